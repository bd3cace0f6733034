"""Test slides for the formats of issue #17, made with third-party tools, and the peers' pixels.

    python slides.py make DIR SVS      writes DIR/{aperio-33003.svs, aperio-33005.svs, j2k-34712.tif,
                                       ome-rgb-pages.ome.tif, ome-fluorescence.ome.tif} from a crop
                                       of SVS (read with OpenSlide), and DICOM WSI folders
                                       DIR/dicom-{jpeg,svs,j2k,sparse,implicit}/ (wsidicomizer)
    python slides.py peer FILE LEVEL OUT  writes the whole LEVEL as raw RGB bytes, decoded by OpenSlide
                                       (SVS, DICOM folders) or tifffile + imagecodecs (other TIFFs), and prints W H

J2K tiles are encoded by imagecodecs (OpenJPEG) and written as pre-compressed tiles by tifffile,
with an Aperio ImageDescription so OpenSlide opens them with its aperio backend. 33003 tiles hold
JFIF YCbCr components without the multiple-component transform (as Aperio writes them); 33005
tiles hold RGB with the transform.
"""
import os
import sys
import numpy as np
import tifffile
import imagecodecs

TILE = 240


def crop(svs):
    import openslide
    s = openslide.OpenSlide(svs)
    return np.asarray(s.read_region((300, 700), 0, (1100, 900)).convert('RGB'))


def reduce(img, f):
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    return img[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3)).round().astype(np.uint8)


def ycbcr(t):
    f = t.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.round(np.stack([y, cb, cr], -1)), 0, 255).astype(np.uint8)


def tiles(img, code):
    h, w, _ = img.shape
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            t = np.full((TILE, TILE, 3), 255, np.uint8)
            c = img[y:y + TILE, x:x + TILE]
            t[:c.shape[0], :c.shape[1]] = c
            if code == 33003:
                yield imagecodecs.jpeg2k_encode(ycbcr(t), level=45, codecformat='J2K', mct=False)
            else:
                yield imagecodecs.jpeg2k_encode(t, level=45, codecformat='J2K', mct=True)


def aperio(path, img, code):
    h, w, _ = img.shape
    levels = [img, reduce(img, 4)]
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(levels):
            desc = (f'Aperio Image Library v12.0.15\r\n{w}x{h} [0,0 {w}x{h}] ({TILE}x{TILE}) J2K/KDU Q=70'
                    '|AppMag = 20|MPP = 0.4990')
            tif.write(tiles(level, code), shape=level.shape, dtype=np.uint8, tile=(TILE, TILE), compression=code,
                      photometric='rgb', description=desc if i == 0 else f'{w}x{h} -> {level.shape[1]}x{level.shape[0]}',
                      metadata=None, subfiletype=0 if i == 0 else 1)
            if i == 0:
                # The SVS thumbnail: a stripped page after the base.
                tif.write(reduce(img, 8), photometric='rgb', metadata=None, description=f'{w}x{h} -> thumbnail')


def make(d, svs):
    img = crop(svs)
    aperio(f'{d}/aperio-33003.svs', img, 33003)
    aperio(f'{d}/aperio-33005.svs', img, 33005)
    tifffile.imwrite(f'{d}/j2k-34712.tif', img, tile=(256, 256), photometric='rgb', compression='jpeg2000',
                     compressionargs={'level': 45})
    planes = np.ascontiguousarray(img.transpose(2, 0, 1))
    with tifffile.TiffWriter(f'{d}/ome-rgb-pages.ome.tif', ome=True) as tif:
        meta = {'axes': 'CYX', 'PhysicalSizeX': 0.499, 'PhysicalSizeY': 0.499,
                'Channel': {'Name': ['Red', 'Green', 'Blue']}}
        tif.write(planes, subifds=2, tile=(128, 128), photometric='minisblack', compression='zlib', metadata=meta)
        for f in (2, 4):
            tif.write(planes[:, ::f, ::f], subfiletype=1, tile=(128, 128), photometric='minisblack', compression='zlib')
    fluo = np.stack([planes[0].astype(np.uint16) * 200 + c for c in range(4)])
    with tifffile.TiffWriter(f'{d}/ome-fluorescence.ome.tif', ome=True) as tif:
        meta = {'axes': 'CYX', 'Channel': {'Name': ['DAPI', 'FITC', 'TRITC', 'Cy5'],
                                           'EmissionWavelength': [461.0, 519.0, 576.0, 670.0]}}
        tif.write(fluo, tile=(128, 128), photometric='minisblack', compression='zlib', metadata=meta)
    dicom(d, svs, f'{d}/aperio-33005.svs')


def dicom(d, svs, crop_svs):
    """DICOM WSI folders made by wsidicomizer: JPEG baseline (YCbCr) from a four-level pyramid of
    the real SVS, the real SVS itself (its RGB-coded JPEG tiles copied, label, overview, thumbnail), JPEG 2000 from the crop, and an uncompressed
    explicit-VR TILED_SPARSE level (frames shuffled, one tile left out) made from the crop with pydicom,
    and the same pixels uncompressed in implicit VR (which OpenSlide does not read)."""
    import os, random
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from wsidicom.codec import Jpeg2kSettings, NumpySettings
    from wsidicomizer import WsiDicomizer
    # A four-level JPEG pyramid of the whole real SVS (OME-TIFF, tifffile), for dicom-jpeg.
    import openslide
    s = openslide.OpenSlide(svs)
    img = np.asarray(s.read_region((0, 0), 0, s.level_dimensions[0]).convert('RGB'))
    with tifffile.TiffWriter(f'{d}/pyramid.ome.tif', ome=True) as tif:
        jpeg = dict(tile=(256, 256), photometric='rgb', compression='jpeg', compressionargs={'level': 90})
        tif.write(img, subifds=3, metadata={'PhysicalSizeX': 0.499, 'PhysicalSizeY': 0.499}, **jpeg)
        for f in (2, 4, 8):
            tif.write(img[::f, ::f], subfiletype=1, **jpeg)
    for name, source, args in [
        ('dicom-jpeg', f'{d}/pyramid.ome.tif', {}),
        ('dicom-svs', svs, {}),
        ('dicom-j2k', crop_svs, dict(encoding=Jpeg2kSettings(levels=[60]), force_transcoding=True, include_label=False,
                                     include_overview=False, include_thumbnail=False)),
        ('dicom-sparse', crop_svs, dict(encoding=NumpySettings(implicit_vr=False), force_transcoding=True, include_label=False,
                                        include_overview=False, include_thumbnail=False, include_levels=[0])),
        ('dicom-implicit', crop_svs, dict(encoding=NumpySettings(implicit_vr=True), force_transcoding=True, include_label=False,
                                          include_overview=False, include_thumbnail=False, include_levels=[0])),
    ]:
        os.makedirs(f'{d}/{name}', exist_ok=True)
        WsiDicomizer.convert(source, f'{d}/{name}', workers=1, tile_size=256, **args)
    for f in os.listdir(f'{d}/dicom-sparse'):
        path = f'{d}/dicom-sparse/{f}'
        ds = pydicom.dcmread(path)
        n = int(ds.NumberOfFrames)
        size = ds.Rows * ds.Columns * ds.SamplesPerPixel
        across = -(-ds.TotalPixelMatrixColumns // ds.Columns)
        frames = [ds.PixelData[i * size:(i + 1) * size] for i in range(n)]
        order = list(range(n))
        random.Random(7).shuffle(order)
        order = [i for i in order if i != 1]  # tile 1 (row 0, column 1) left out: background
        groups = []
        for i in order:
            position = Dataset()
            position.ColumnPositionInTotalImagePixelMatrix = (i % across) * ds.Columns + 1
            position.RowPositionInTotalImagePixelMatrix = (i // across) * ds.Rows + 1
            position.XOffsetInSlideCoordinateSystem = 0
            position.YOffsetInSlideCoordinateSystem = 0
            position.ZOffsetInSlideCoordinateSystem = 0
            group = Dataset()
            group.PlanePositionSlideSequence = Sequence([position])
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
        ds.DimensionOrganizationType = 'TILED_SPARSE'
        ds.NumberOfFrames = len(order)
        ds.PixelData = b''.join(frames[i] for i in order)
        ds.save_as(path, enforce_file_format=True)


def openslide_level(s, level):
    """A whole level from OpenSlide, over white (tiles a file leaves out are transparent there)."""
    from PIL import Image
    w, h = s.level_dimensions[level]
    region = s.read_region((0, 0), level, (w, h))
    white = Image.new('RGBA', (w, h), (255, 255, 255, 255))
    white.alpha_composite(region)
    return np.asarray(white.convert('RGB'))


def peer(path, level, out):
    if os.path.isdir(path):
        import openslide
        first = sorted(os.listdir(path))[0]
        s = openslide.OpenSlide(os.path.join(path, first))
        img = openslide_level(s, level)
    elif path.endswith('.svs'):
        import openslide
        img = openslide_level(openslide.OpenSlide(path), level)
    else:
        with tifffile.TiffFile(path) as t:
            img = t.series[0].levels[level].asarray()
        if img.ndim == 3 and img.shape[0] == 3:
            img = img.transpose(1, 2, 0)
        img = np.ascontiguousarray(img)
    img.tofile(out)
    print(img.shape[1], img.shape[0])


if __name__ == '__main__':
    if sys.argv[1] == 'make':
        make(sys.argv[2], sys.argv[3])
    else:
        peer(sys.argv[2], int(sys.argv[3]), sys.argv[4])
