"""OCPP 2.0.1: what only this version of the protocol knows.

The station (BootNotification, Heartbeat, StatusNotification, Reset), the CSMS's requests
(handlers.py), the device model (Part 2 B), TransactionEvent with seqNo and the
TxStart/StopPoints (E), the word mapping from the core (mapping.py), and the 2.0.1 local
authorization list and authorization cache (C, D) behind the authorization module's
backend interface (authorizer.py).

Everything a second version would need as well lives one level up in firmware/ocpp/
(connection and security profiles, frame hygiene, the persistent queue and its
delivery, settings, small storage); nothing there imports from here.
"""
