"""The transaction coordinator (KIP-98, with KIP-890's epoch bump per transaction).

``model.py`` holds a transactional id's state and Kafka's state names, ``log_format.py`` the
records of ``__transaction_state``, ``coordinator.py`` the synchronous state machine that
decides every request and is rebuilt from those records by the same ``replay``.
"""
