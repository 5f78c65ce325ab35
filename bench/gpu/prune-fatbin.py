#!/usr/bin/env python3
"""Keep only one GPU architecture's device code in a shared library's .nv_fatbin section, in place.

What nvprune does (`nvprune -arch sm_90`), for a machine without a CUDA toolkit: every fat binary in
the section keeps only its ELF/PTX entries for the wanted architecture, moved to the front of that
fat binary, with the fat binary's size field shrunk to match; the bytes freed are zeroed. Section and
fat binary offsets do not move (the registration wrappers in .nvFatBinSegment point at them), so the
file keeps its size and layout and only compresses far better. A fat binary with no entry for the
architecture is left whole (the driver could never load it on that GPU anyway).

  python3 prune-fatbin.py LIB.so 90      # rewrites LIB.so; prints what it kept
"""
import struct
import subprocess
import sys

FATBIN_MAGIC = 0xBA55ED50


def fatbin_section(path):
    # readelf is in binutils, present wherever prepare.sh runs; section Off/Size are hex.
    out = subprocess.run(['readelf', '-S', '-W', path], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        cols = line.replace('[ ', '[').split()
        if '.nv_fatbin' in cols:
            i = cols.index('.nv_fatbin')
            return int(cols[i + 3], 16), int(cols[i + 4], 16)
    raise SystemExit(f'{path}: no .nv_fatbin section')


def entries(buf, start, end):
    q = start
    while q < end:
        kind, _ver, header_size, payload_size = struct.unpack_from('<HHIQ', buf, q)
        arch = struct.unpack_from('<I', buf, q + 28)[0]
        yield q, header_size + payload_size, kind, arch
        q += header_size + payload_size
    if q != end:
        raise SystemExit(f'fat binary entries overrun their fat binary at {start:#x}')


def main():
    path, want = sys.argv[1], int(sys.argv[2])
    off, size = fatbin_section(path)
    data = bytearray(open(path, 'rb').read())
    sec = memoryview(data)[off:off + size]
    p = fatbins = pruned = freed = 0
    while p + 16 <= size:
        magic, _ver, header_size, fat_size = struct.unpack_from('<IHHQ', sec, p)
        if magic != FATBIN_MAGIC:
            p += 8  # alignment padding between fat binaries
            continue
        fatbins += 1
        start, end = p + header_size, p + header_size + fat_size
        keep = [bytes(sec[q:q + n]) for q, n, _k, arch in entries(sec, start, end) if arch == want]
        if keep:
            kept = b''.join(keep)
            sec[start:start + len(kept)] = kept
            sec[start + len(kept):end] = bytes(end - start - len(kept))
            struct.pack_into('<Q', sec, p + 8, len(kept))
            pruned += 1
            freed += fat_size - len(kept)
        p = end
    open(path, 'wb').write(data)
    print(f'{path}: {fatbins} fat binaries, {pruned} pruned to sm_{want}, '
          f'{freed / 1048576:.1f} MiB of other architectures zeroed')


if __name__ == '__main__':
    main()
