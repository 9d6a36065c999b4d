"""CrashLoopBackOff: 1 s, doubling, capped at 5 minutes, reset by a healthy run."""

from __future__ import annotations

from launcher.up.backoff import RestartBackoff


def test_delays_double_from_one_second_up_to_five_minutes() -> None:
    backoff = RestartBackoff()
    delays = [backoff.delay_after(0.5) for _ in range(11)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_a_run_of_a_minute_resets_the_backoff() -> None:
    backoff = RestartBackoff()
    assert [backoff.delay_after(2.0) for _ in range(4)] == [1, 2, 4, 8]
    assert backoff.delay_after(59.0) == 16  # not quite healthy: still crash-looping
    assert backoff.delay_after(60.0) == 1
    assert backoff.delay_after(1.0) == 2
