"""What a web process keeps of the files it read from the storage: bounded in bytes."""

from chartbuild.site.stored import ByteCache


def test_the_files_kept_never_exceed_their_bytes_and_the_latest_stay():
    cache = ByteCache(limit=1000)
    for n in range(50):
        cache.put((1, f"chart{n}.svg"), b"x" * 200)
        assert cache.size <= 1000
    assert cache.get((1, "chart49.svg")) == b"x" * 200
    assert cache.get((1, "chart0.svg")) is None


def test_a_file_read_again_is_kept_before_older_ones():
    cache = ByteCache(limit=800)
    for name in ("a", "b", "c", "d"):
        cache.put((1, name), b"y" * 200)
    assert cache.get((1, "a")) is not None  # read again: the newest now
    cache.put((1, "e"), b"y" * 200)
    assert cache.get((1, "a")) is not None and cache.get((1, "b")) is None


def test_a_file_larger_than_a_quarter_is_not_kept():
    cache = ByteCache(limit=1000)
    cache.put((1, "huge.png"), b"z" * 300)
    assert cache.get((1, "huge.png")) is None and cache.size == 0
