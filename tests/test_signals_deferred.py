"""A signal that arrives while a checkpoint is written is handled once the files are whole."""

import os
import signal

import pytest

from latentexp.runtime import signals_deferred


class Requeued(Exception):
    pass


def test_a_handler_that_raises_runs_after_the_block_not_inside_it():
    def requeue(number, frame):  # as submitit's SIGUSR2 handler ends the task
        raise Requeued

    previous = signal.signal(signal.SIGUSR2, requeue)
    written = []
    try:
        with pytest.raises(Requeued), signals_deferred():
            os.kill(os.getpid(), signal.SIGUSR2)
            written.append("checkpoint")  # the handler has not run: the write goes on
            written.append("history")
        assert written == ["checkpoint", "history"]
        assert signal.getsignal(signal.SIGUSR2) is requeue  # the handler is the one it was
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_without_a_signal_nothing_changes():
    before = signal.getsignal(signal.SIGTERM)
    with signals_deferred():
        pass
    assert signal.getsignal(signal.SIGTERM) is before
