#!/usr/bin/env python3
"""Write every colour bitmap of a CBDT/CBLC emoji font (Noto Color Emoji) as a PNG file.

Colour emoji fonts such as Debian's fonts-noto-color-emoji store each glyph as a PNG image in the
font's CBDT table, indexed by the CBLC table. This script reads those two tables with the standard
library only and writes the embedded PNG bytes unchanged, one file per glyph: no rendering, no
font engine, no third-party module. The images are 136x128 RGBA on transparency; `latentkit
dataset --transform pad --background 255,255,255` turns them into a training set.

Usage: emoji_images.py [--subset faces] [FONT] OUTDIR
FONT defaults to /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf.

--subset faces keeps the yellow face emoji only: the single-code-point emoji of the "face-..."
subgroups of Unicode's emoji-test.txt (Debian's unicode-data package), without "face-costume"
(clowns, ghosts, aliens, robots), found through the font's cmap table. Their files are named after
the code point (u1f600.png).

Licence of the images: they are the glyphs of Noto Color Emoji, SIL Open Font License 1.1
(see /usr/share/doc/fonts-noto-color-emoji/copyright).
"""
import os
import struct
import sys

DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
FACE_SUBGROUPS_LEFT_OUT = {"face-costume"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fail(message):
    sys.exit(f"emoji_images.py: {message}")


def read_tables(data, path):
    if len(data) < 12:
        fail(f"{path}: too short to be a font")
    num_tables = struct.unpack_from(">H", data, 4)[0]
    tables = {}
    for i in range(num_tables):
        tag, _, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if offset + length > len(data):
            fail(f"{path}: table {tag!r} runs past the end of the file")
        tables[tag.decode("latin-1")] = (offset, length)
    for tag in ("CBLC", "CBDT", "cmap"):
        if tag not in tables:
            fail(f"{path}: no {tag} table (not a CBDT colour bitmap font)")
    return tables


def glyph_locations(data, cblc, cbdt):
    """Yields (glyph id, offset of the glyph's record in the file, its image format)."""
    num_sizes = struct.unpack_from(">I", data, cblc + 4)[0]
    # Use the largest strike (Noto Color Emoji has one, 109 ppem).
    best = None
    for s in range(num_sizes):
        record = cblc + 8 + 48 * s
        array_offset, _, num_subtables = struct.unpack_from(">III", data, record)
        ppem = data[record + 44]
        if best is None or ppem > best[0]:
            best = (ppem, array_offset, num_subtables)
    if best is None:
        return
    _, array_offset, num_subtables = best
    array = cblc + array_offset
    for t in range(num_subtables):
        first, last, extra = struct.unpack_from(">HHI", data, array + 8 * t)
        sub = array + extra
        index_format, image_format, image_data = struct.unpack_from(">HHI", data, sub)
        base = cbdt + image_data
        body = sub + 8
        if index_format in (1, 3):
            size, code = (4, ">I") if index_format == 1 else (2, ">H")
            offsets = [struct.unpack_from(code, data, body + size * i)[0]
                       for i in range(last - first + 2)]
            for i in range(last - first + 1):
                if offsets[i + 1] > offsets[i]:
                    yield first + i, base + offsets[i], image_format
        elif index_format == 2:
            image_size = struct.unpack_from(">I", data, body)[0]
            for i in range(last - first + 1):
                yield first + i, base + image_size * i, image_format
        elif index_format == 4:
            count = struct.unpack_from(">I", data, body)[0]
            pairs = [struct.unpack_from(">HH", data, body + 4 + 4 * i) for i in range(count + 1)]
            for (glyph, start), (_, end) in zip(pairs, pairs[1:]):
                if end > start:
                    yield glyph, base + start, image_format
        elif index_format == 5:
            image_size = struct.unpack_from(">I", data, body)[0]
            count = struct.unpack_from(">I", data, body + 12)[0]
            for i in range(count):
                glyph = struct.unpack_from(">H", data, body + 16 + 2 * i)[0]
                yield glyph, base + image_size * i, image_format
        else:
            fail(f"unsupported CBLC index format {index_format}")


def code_point_glyphs(data, cmap):
    """Code point -> glyph id from the font's Unicode cmap subtables (formats 4 and 12)."""
    glyphs = {}
    count = struct.unpack_from(">H", data, cmap + 2)[0]
    for i in range(count):
        platform, encoding, offset = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        if platform not in (0, 3):
            continue
        table = cmap + offset
        fmt = struct.unpack_from(">H", data, table)[0]
        if fmt == 12:
            groups = struct.unpack_from(">I", data, table + 12)[0]
            for g in range(groups):
                start, end, glyph = struct.unpack_from(">III", data, table + 16 + 12 * g)
                for cp in range(start, end + 1):
                    glyphs.setdefault(cp, glyph + cp - start)
        elif fmt == 4:
            segs = struct.unpack_from(">H", data, table + 6)[0] // 2
            ends = table + 14
            starts = ends + 2 * segs + 2
            deltas = starts + 2 * segs
            ranges = deltas + 2 * segs
            for k in range(segs):
                end, start = struct.unpack_from(">H", data, ends + 2 * k)[0], struct.unpack_from(">H", data, starts + 2 * k)[0]
                delta, range_offset = struct.unpack_from(">hH", data, deltas + 2 * k)[0], struct.unpack_from(">H", data, ranges + 2 * k)[0]
                for cp in range(start, min(end, 0xfffe) + 1):
                    if range_offset == 0:
                        glyph = (cp + delta) & 0xFFFF
                    else:
                        glyph = struct.unpack_from(">H", data, ranges + 2 * k + range_offset + 2 * (cp - start))[0]
                        glyph = (glyph + delta) & 0xFFFF if glyph else 0
                    if glyph:
                        glyphs.setdefault(cp, glyph)
    return glyphs


def face_code_points(path):
    """The single-code-point, fully-qualified emoji of the face-... subgroups, in file order."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        fail(f"{path}: {e.strerror} (install unicode-data)")
    subgroup, out = None, []
    for line in lines:
        if line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
            continue
        if not line or line.startswith("#") or "; fully-qualified" not in line:
            continue
        if not subgroup.startswith("face-") or subgroup in FACE_SUBGROUPS_LEFT_OUT:
            continue
        points = [int(p, 16) for p in line.split(";")[0].split() if p != "FE0F"]
        if len(points) == 1:
            out.append(points[0])
    return out


def png_bytes(data, offset, image_format):
    header = {17: 5, 18: 8, 19: 0}.get(image_format)
    if header is None:
        return None
    length = struct.unpack_from(">I", data, offset + header)[0]
    start = offset + header + 4
    png = data[start:start + length]
    return png if png.startswith(PNG_SIGNATURE) and len(png) == length else None


def main(argv):
    args = argv[1:]
    subset = None
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if args[:1] == ["--subset"]:
        if len(args) < 2 or args[1] != "faces":
            sys.exit("emoji_images.py: --subset takes 'faces'\n" + __doc__)
        subset, args = args[1], args[2:]
    if any(a.startswith("-") for a in args):
        sys.exit(f"emoji_images.py: unknown option {next(a for a in args if a.startswith('-'))}\n" + __doc__)
    if len(args) == 1:
        font, outdir = DEFAULT_FONT, args[0]
    elif len(args) == 2:
        font, outdir = args
    else:
        sys.exit(__doc__)
    try:
        with open(font, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"{font}: {e.strerror} (install fonts-noto-color-emoji)")
    tables = read_tables(data, font)
    if os.path.exists(outdir):
        fail(f"{outdir}: already exists")
    wanted = None  # glyph id -> file name
    if subset == "faces":
        cmap = code_point_glyphs(data, tables["cmap"][0])
        wanted = {cmap[cp]: f"u{cp:x}.png" for cp in face_code_points(EMOJI_TEST) if cp in cmap}
    tmp = outdir.rstrip("/") + ".partial"
    os.makedirs(tmp, exist_ok=True)
    written = skipped = 0
    try:
        for glyph, offset, image_format in glyph_locations(data, tables["CBLC"][0], tables["CBDT"][0]):
            if wanted is not None and glyph not in wanted:
                continue
            png = png_bytes(data, offset, image_format)
            if png is None:
                skipped += 1
                continue
            name = wanted[glyph] if wanted is not None else f"glyph{glyph:05d}.png"
            with open(os.path.join(tmp, name), "wb") as out:
                out.write(png)
            written += 1
    except struct.error:
        fail(f"{font}: CBLC/CBDT/cmap tables are truncated")
    if written == 0:
        fail(f"{font}: no PNG bitmaps found")
    os.rename(tmp, outdir)
    print(f"{outdir}: {written} emoji images" + (f" ({skipped} glyphs without a PNG skipped)" if skipped else ""))


if __name__ == "__main__":
    main(sys.argv)
