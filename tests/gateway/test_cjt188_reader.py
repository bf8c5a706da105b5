"""The stream reader on noisy serial input: good frames out, bad ones counted and skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cjt188 import (
    Frame,
    FrameReader,
    MeteringData,
    VolumeUnit,
    encode_frame,
    get_model,
    metering_reply,
    metering_request,
)
from gateway.cjt188.frame import START

MODEL = get_model("default")


def _reply(address: str, volume: int, status: int) -> Frame:
    data = MeteringData(volume_m3=Decimal(volume).scaleb(-2), settlement_volume_m3=Decimal(0),
                        unit=VolumeUnit.CUBIC_METRE, meter_clock=datetime(2026, 7, 1, 12),
                        valve="open", battery_low=False, tamper=False, raw_status=status)
    return metering_reply(address, data, MODEL)


def _feed_in_chunks(reader: FrameReader, stream: bytes, cuts: list[int]) -> list[Frame]:
    frames: list[Frame] = []
    previous = 0
    for cut in sorted({c % (len(stream) + 1) for c in cuts}) + [len(stream)]:
        frames += reader.feed(stream[previous:cut])
        previous = cut
    return frames + reader.flush()


def test_two_replies_split_byte_by_byte_are_both_found() -> None:
    first = _reply("00000000000001", 123, 0)
    second = _reply("00000000000002", 456, 1)
    stream = encode_frame(first, preamble=2) + encode_frame(second, preamble=3)
    reader = FrameReader()
    frames = [frame for byte in stream for frame in reader.feed(bytes([byte]))]
    assert frames == [first, second]
    assert (reader.stats.frames, reader.stats.bad_frames, reader.pending) == (2, 0, 0)


def test_echo_of_our_request_is_counted_and_dropped() -> None:
    request = metering_request("78330011223344", MODEL)
    reply = _reply("78330011223344", 1, 0)
    reader = FrameReader()
    assert reader.feed(encode_frame(request) + encode_frame(reply)) == [reply]
    assert reader.stats.echoes == 1
    keeping = FrameReader(keep_requests=True)
    assert keeping.feed(encode_frame(request)) == [request]


def test_a_reply_whose_data_holds_68h_is_yielded_without_waiting() -> None:
    # 68.68 m3 puts 68H inside the data field; the reader must not sit on the frame.
    reply = _reply("68686868686868", 6868, 0x68)
    reader = FrameReader()
    assert reader.feed(encode_frame(reply)) == [reply]
    assert reader.pending == 0


def test_truncated_frame_followed_by_a_good_one_loses_only_the_truncated() -> None:
    good = _reply("00000000000009", 999, 0)
    cut = encode_frame(_reply("00000000000008", 1, 0))[:17]
    reader = FrameReader()
    frames = reader.feed(cut + encode_frame(good)) + reader.flush()
    assert frames == [good]
    assert reader.stats.bad_frames == 1


# --------------------------------------------------------------------------- noisy streams


@dataclass
class NoisyStream:
    data: bytes = b""
    good: list[Frame] = field(default_factory=list)
    echoes: int = 0
    bad: int = 0


def _clean(raw: bytes) -> bool:
    # A broken frame is counted once when no further 68H hides in it; each 68H inside a
    # broken frame is a false start the reader must also try and reject (and count).
    return START not in raw[1:]


frames_st = st.builds(
    _reply,
    st.lists(st.integers(0, 99), min_size=7, max_size=7).map(
        lambda pairs: "".join(f"{p:02d}" for p in pairs)),
    st.integers(0, 99_999_999), st.integers(0, 0xFFFF),
)


@st.composite
def noisy_streams(draw: st.DrawFn) -> NoisyStream:
    stream = NoisyStream()
    parts: list[bytes] = []
    for kind in draw(st.lists(st.sampled_from(["good", "echo", "corrupt", "truncated",
                                               "garbage"]), max_size=12)):
        preamble = draw(st.integers(0, 4))
        if kind == "good":
            frame = draw(frames_st)
            stream.good.append(frame)
            parts.append(encode_frame(frame, preamble))
        elif kind == "echo":
            stream.echoes += 1
            parts.append(encode_frame(metering_request(draw(frames_st).address, MODEL),
                                      preamble))
        elif kind == "garbage":
            parts.append(draw(st.binary(min_size=1, max_size=40).filter(
                lambda raw: START not in raw)))
        else:
            raw = bytearray(encode_frame(draw(frames_st)))
            if kind == "corrupt":
                index = draw(st.integers(1, len(raw) - 1))
                raw[index] = draw(st.integers(0, 255).filter(
                    lambda b, old=raw[index]: b not in (old, START)))
            else:
                raw = raw[: draw(st.integers(1, len(raw) - 1))]
            if not _clean(bytes(raw)):
                continue
            stream.bad += 1
            parts.append(b"\xfe" * preamble + bytes(raw))
    stream.data = b"".join(parts)
    return stream


# Deterministic examples: an 8-bit additive checksum lets about one broken frame in 10^5
# "validate" over the top of the next frame (see reader.py); a fixed example set keeps this
# test from flaking on that inherent ambiguity while still covering hundreds of streams.
@settings(max_examples=300, derandomize=True, deadline=None)
@given(noisy_streams(), st.lists(st.integers(0, 10_000), max_size=20))
def test_noisy_stream_yields_exactly_the_good_frames_and_counts_the_bad(
    stream: NoisyStream, cuts: list[int]
) -> None:
    reader = FrameReader()
    assert _feed_in_chunks(reader, stream.data, cuts) == stream.good
    assert reader.stats.echoes == stream.echoes
    assert reader.stats.bad_frames == stream.bad
    assert reader.pending == 0


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=10))
def test_random_bytes_never_crash_the_reader(raw: bytes, cuts: list[int]) -> None:
    reader = FrameReader()
    frames = _feed_in_chunks(reader, raw, cuts)
    assert reader.stats.frames == len(frames)
    assert reader.pending == 0
