"""Security: who a connection is (its principal), and later authentication, authorization and
quotas (issue 13).  Below the api layer: handlers read ``request.principal``; the server layer
sets it when a connection authenticates."""
