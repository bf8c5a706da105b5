"""How fast the gateway decodes CJ/T 188 replies, next to what an M-Bus line can deliver.

    .venv/bin/python benchmarks/cjt188_decode.py                 # 20,000 frames, 3 rounds
    .venv/bin/python benchmarks/cjt188_decode.py --frames 50000 --repeat 5

Variants (the same 901F replies from 500 meters, every one decoded to a contract
``MeterReading``, the median of the rounds printed):

- strict: ``decode_frame`` on each frame's bytes, then ``decode_metering`` and
  ``to_meter_reading``;
- reader, clean: the replies as one byte stream fed to a ``FrameReader`` in 64-byte chunks;
- reader, noisy: the stream as a two-wire line delivers it, each reply after the echo of its
  request, with random garbage around it and half the replies preceded by a copy cut short.

Baseline: a 901F reply is 35 bytes plus 2 FEH, 11 bits a character at 2400 baud 8E1, so a
line carries at most ~6 replies a second, fewer with the request and turnaround between them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from gateway.cjt188 import (
    FrameReader,
    MeteringData,
    decode_frame,
    decode_metering,
    encode_frame,
    get_model,
    metering_reply,
    metering_request,
    to_meter_reading,
)

MODEL = get_model("default")
METERS = 500
LINE_BAUD = 2400
BITS_PER_CHAR = 11  # start, 8 data, even parity, stop


def replies(count: int) -> list[tuple[bytes, bytes]]:
    """(request bytes, reply bytes) for ``count`` reads spread over METERS meters."""
    rng = random.Random(1)
    out = []
    for index in range(count):
        address = f"7833{index % METERS:010d}"
        data = MeteringData(volume_m3=Decimal(rng.randrange(0, 10**7)) / 100,
                            settlement_volume_m3=Decimal(rng.randrange(0, 10**5)),
                            meter_clock=datetime(2026, 7, 1, 12, 30, 5), valve="open",
                            battery_low=False, tamper=False, raw_status=0, ser=index % 256)
        out.append((encode_frame(metering_request(address, MODEL, ser=index % 256),
                                 MODEL.preamble),
                    encode_frame(metering_reply(address, data, MODEL), MODEL.preamble)))
    return out


def noisy_stream(pairs: list[tuple[bytes, bytes]]) -> bytes:
    rng = random.Random(2)
    out = bytearray()
    for request, reply in pairs:
        out += request
        if rng.random() < 0.5:
            out += rng.randbytes(rng.randint(1, 16))
        if rng.random() < 0.5:
            out += reply[: rng.randint(3, len(reply) - 1)]
        out += reply
    return bytes(out)


def to_reading(frame_data: MeteringData, now: datetime) -> None:
    to_meter_reading(frame_data, device="m", village="v001", dma=None, time=now,
                     clock_tz=MODEL.clock_tz)


def strict(pairs: list[tuple[bytes, bytes]]) -> int:
    now = datetime.now(UTC)
    for _, reply in pairs:
        to_reading(decode_metering(decode_frame(reply), MODEL), now)
    return len(pairs)


def streamed(stream: bytes) -> int:
    now = datetime.now(UTC)
    reader = FrameReader()
    count = 0
    for start in range(0, len(stream), 64):
        for frame in reader.feed(stream[start : start + 64]):
            to_reading(decode_metering(frame, MODEL), now)
            count += 1
    for frame in reader.flush():
        to_reading(decode_metering(frame, MODEL), now)
        count += 1
    return count


def rate(run: Callable[[], int], expected: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        decoded = run()
        elapsed = time.perf_counter() - started
        if decoded != expected:
            raise SystemExit(f"decoded {decoded} frames, expected {expected}")
        rates.append(decoded / elapsed)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pairs = replies(args.frames)
    clean = b"".join(reply for _, reply in pairs)
    noisy = noisy_stream(pairs)
    reply_bytes = len(pairs[0][1])
    line = LINE_BAUD / BITS_PER_CHAR / reply_bytes
    rows = [
        ("M-Bus line at 2400 baud 8E1 (baseline)", line),
        ("strict decode_frame + decode_metering", rate(lambda: strict(pairs), args.frames,
                                                       args.repeat)),
        ("FrameReader, clean stream", rate(lambda: streamed(clean), args.frames, args.repeat)),
        ("FrameReader, noisy stream", rate(lambda: streamed(noisy), args.frames, args.repeat)),
    ]
    print(f"{args.frames} 901F replies of {reply_bytes} bytes, median of {args.repeat} rounds")  # noqa: T201 - CLI output
    print(f"{'variant':<42} {'frames/s':>12} {'x line':>8}")  # noqa: T201 - CLI output
    for name, value in rows:
        print(f"{name:<42} {value:>12,.0f} {value / line:>8,.0f}")  # noqa: T201 - CLI output


if __name__ == "__main__":
    main()
