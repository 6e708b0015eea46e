"""The field engineer's serial console (docs/console.md).

Pure parts: ``line`` (line discipline: editing, history, completion, bad input),
``session`` (login, roles, lock-out, idle logout), ``passwords`` (scrypt hashes),
``commands`` / ``views`` / ``actions`` (what each command reads or does). The shell
(``server``) serves one session on the configured device (hal/console_port.py) and never
makes the charger wait: input is read as it comes, output goes through a bounded buffer.
"""
