"""OCPP-J, the parts every version needs; a version's station lives in a subpackage
(``v201/`` today; ``v16/`` can sit beside it).

Here, importing no version (tests/test_ocpp_layout.py pins that):
- connection.py: websocket URL, security profiles 1-3 (basic auth, TLS, client
  certificate), the reconnect loop with the version's back-off;
- link.py: frame hygiene on the ``ocpp`` package's ChargePoint (the version names its
  actions and schema error codes), ``raw_call`` / ``CallFailed``;
- queue.py and delivery.py: the persistent ordered message queue and its in-order
  delivery with attempts (the version says which messages may be thinned);
- storage.py: the station's SQLite file and key/value table; settings.py: ``[ocpp]``.

The seam: anything that names a message, a payload field, a device-model or
configuration key, or a word of the version's enums belongs to the version. Who may
charge is decided outside OCPP (firmware/authorization.py); a version's station is one
of its backends, sources and sinks.
"""
