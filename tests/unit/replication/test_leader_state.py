"""The leader's bookkeeping of followers: caught-up times, high watermark, ISR changes."""

from kavka.replication.leader import LeaderState

LAG = 30_000


def state(isr=(1, 2, 3), now=0):
    return LeaderState(1, (1, 2, 3), isr, leader_epoch=5, epoch_start_offset=100, now_ms=now)


def test_high_watermark_is_the_smallest_isr_leo():
    s = state()
    assert s.high_watermark(120) == 0          # followers not heard from yet
    s.on_fetch(2, 110, 120, 10)
    s.on_fetch(3, 120, 120, 10)
    assert s.high_watermark(120) == 110
    s.set_isr({1, 3})                            # 2 left the ISR: it no longer holds the HW back
    assert s.high_watermark(120) == 120
    assert s.high_watermark(125) == 120


def test_caught_up_now_or_at_the_previous_fetch():
    s = state(now=0)
    s.on_fetch(2, 100, 100, 1_000)               # at the leader's LEO: caught up now
    assert s.followers[2].last_caught_up_ms == 1_000
    s.on_fetch(2, 100, 150, 2_000)               # behind: still caught up as of 1 000
    assert s.followers[2].last_caught_up_ms == 1_000
    s.on_fetch(2, 150, 180, 3_000)               # has what existed at its previous fetch (150)
    assert s.followers[2].last_caught_up_ms == 2_000
    s.on_fetch(2, 160, 200, 4_000)               # 160 < 180: not caught up with the previous either
    assert s.followers[2].last_caught_up_ms == 2_000


def test_a_lagging_follower_is_out_of_sync_after_the_lag_time():
    s = state(now=0)
    s.on_fetch(2, 100, 100, 1_000)
    s.on_fetch(3, 100, 100, 1_000)
    for t in range(2_000, 40_000, 1_000):       # 3 keeps up, 2 is stuck at 100 while the leader grows
        s.on_fetch(2, 100, 100 + t, t)
        s.on_fetch(3, 100 + t - 1_000, 100 + t, t)
    assert s.out_of_sync(LAG + 1_000, LAG) == set()
    assert s.out_of_sync(LAG + 2_001, LAG) == {2}


def test_a_silent_follower_is_out_of_sync_and_the_leader_never_is():
    s = state(now=0)
    assert s.out_of_sync(LAG, LAG) == set()
    assert s.out_of_sync(LAG + 1, LAG) == {2, 3}
    s.set_isr(set())
    assert s.isr == {1}


def test_a_follower_rejoins_once_it_reaches_the_hw_and_the_epoch_start():
    s = state(isr=(1, 3))
    s.on_fetch(3, 130, 130, 10)
    s.on_fetch(2, 90, 130, 10)
    hw = s.high_watermark(130)
    assert hw == 130 and not s.may_join(2, hw)
    s.on_fetch(2, 130, 130, 20)
    assert s.may_join(2, hw)
    assert not s.may_join(3, hw)                 # already in
    low = state(isr=(1,))
    low.on_fetch(2, 50, 60, 10)                  # the HW (60) is below the epoch start (100)
    assert not low.may_join(2, 60)
