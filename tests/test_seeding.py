import numpy as np
import pytest

from sweep.seeding import SOURCES, seed_sequence, stream


def test_streams_differ_by_source_seed_and_root():
    draws = {}
    for source in SOURCES:
        for seed in (0, 1):
            for root in (0, 5):
                draws[(source, seed, root)] = stream(source, seed, root).integers(0, 2**62, 4).tolist()
    values = [tuple(v) for v in draws.values()]
    assert len(set(values)) == len(values)


def test_stream_is_reproducible_and_not_seed_plus_offset():
    a = stream("init", 3).standard_normal(5)
    b = stream("init", 3).standard_normal(5)
    assert np.array_equal(a, b)
    # seed+offset schemes make (init, s+1) == (order, s); independent entropy never does
    for s in range(20):
        assert not np.array_equal(stream("init", s + 1).standard_normal(3), stream("order", s).standard_normal(3))
    assert seed_sequence("order", 2, 1).entropy != seed_sequence("order", 1, 2).entropy


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_bad_seed_rejected(bad):
    with pytest.raises(ValueError, match="seed"):
        stream("init", bad)


def test_unknown_source():
    with pytest.raises(ValueError, match="allowed"):
        stream("weights", 0)
