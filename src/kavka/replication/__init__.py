"""Replication: leaders track their followers, followers copy their leaders (issue 5).

``leader.py`` is the leader's bookkeeping of one partition (follower log end
offsets, the in-sync replica set, the high watermark), decided from what
followers' fetches say and an injected clock; it does no I/O.
"""
