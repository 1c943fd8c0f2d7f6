"""The files that make a class map explain itself in GIS software: category names for GDAL, a QGIS style and an
OGC SLD, all from the HRLC legend (`hrlc.legend`).

Why: a class map is a grid of codes; its colour table (in the COG) gives colours, not meaning. GDAL keeps a
GeoTIFF's category names and raster attribute table in a PAM side-car, `<file>.aux.xml` (the GTiff format has
no tag for them), which GDAL, rasterio and QGIS read whenever they open the file beside it (on S3 too);
`gdalinfo` then lists the categories. QGIS applies `<file stem>.qml` beside a raster as its default style; an
SLD is what OGC map servers (GeoServer, MapServer) take. Each file lists every class of the legend, so one
style fits every map.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from hrlc import legend

__all__ = ["category_names_aux_xml", "qgis_style", "sld_style"]


def _classes() -> list[legend.LandCoverClass]:
    return [c for code, c in sorted(legend.CLASSES.items()) if code != legend.NODATA]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def category_names_aux_xml(band_description: str = "land_cover_class") -> str:
    """GDAL's PAM side-car of a one-band class map: category names (one per value 0..255, the legend's name or
    empty) and a raster attribute table (value, class name, red, green, blue) of the legend's classes."""
    names = [""] * 256
    for code, c in legend.CLASSES.items():
        names[code] = c.name
    last = max(i for i, n in enumerate(names) if n)
    categories = "\n".join(f"      <Category>{escape(n)}</Category>" for n in names[: last + 1])
    columns = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8)]  # GFT, GFU
    fields = "\n".join(
        f'      <FieldDefn index="{i}">\n        <Name>{name}</Name>\n        <Type>{kind}</Type>\n'
        f"        <Usage>{usage}</Usage>\n      </FieldDefn>"
        for i, (name, kind, usage) in enumerate(columns)
    )
    rows = "\n".join(
        f'      <Row index="{i}">\n        <F>{c.code}</F>\n        <F>{escape(c.name)}</F>\n'
        + "".join(f"        <F>{v}</F>\n" for v in c.rgb)
        + "      </Row>"
        for i, c in enumerate(_classes())
    )
    return (
        "<PAMDataset>\n"
        '  <PAMRasterBand band="1">\n'
        f"    <Description>{escape(band_description)}</Description>\n"
        "    <CategoryNames>\n"
        f"{categories}\n"
        "    </CategoryNames>\n"
        '    <GDALRasterAttributeTable tableType="thematic">\n'
        f"{fields}\n"
        f"{rows}\n"
        "    </GDALRasterAttributeTable>\n"
        "  </PAMRasterBand>\n"
        "</PAMDataset>\n"
    )


def qgis_style() -> str:
    """A QGIS layer style (.qml) of a class map: a paletted renderer with every class's colour and name."""
    entries = "\n".join(
        f'        <paletteEntry value="{c.code}" color="{_hex(c.rgb)}" alpha="255" label="{c.code} '
        f'{escape(c.name, {chr(34): "&quot;"})}"/>'
        for c in _classes()
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28" styleCategories="Symbology">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
        "      <colorPalette>\n"
        f"{entries}\n"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        "  </pipe>\n"
        "</qgis>\n"
    )


def sld_style(layer: str = "hrlc class map") -> str:
    """An OGC SLD 1.0 style of a class map: a ColorMap of type "values" with every class's colour and name."""
    entries = "\n".join(
        f'              <ColorMapEntry color="{_hex(c.rgb)}" quantity="{c.code}" '
        f'label="{escape(c.name, {chr(34): "&quot;"})}" opacity="1"/>'
        for c in _classes()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<StyledLayerDescriptor version="1.0.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.opengis.net/sld '
        'http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd">\n'
        "  <NamedLayer>\n"
        f"    <Name>{escape(layer)}</Name>\n"
        "    <UserStyle>\n"
        "      <Title>CCI HRLC legend v1.2</Title>\n"
        "      <FeatureTypeStyle>\n"
        "        <Rule>\n"
        "          <RasterSymbolizer>\n"
        '            <ColorMap type="values">\n'
        f"{entries}\n"
        "            </ColorMap>\n"
        "          </RasterSymbolizer>\n"
        "        </Rule>\n"
        "      </FeatureTypeStyle>\n"
        "    </UserStyle>\n"
        "  </NamedLayer>\n"
        "</StyledLayerDescriptor>\n"
    )
