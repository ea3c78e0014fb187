"""Archives for directory artifacts: streaming writers, readers, codecs and the safe
extractor. Everything moves as iterators of bytes chunks with bounded memory; nothing
shells out and no temporary archive file is ever written.

    write_archive / write_tar / write_zip      a local tree -> chunks
    compress / decompress / detect             zstd, gzip (ISA-L), none; by magic bytes
    extract_tar / extract_zip                  chunks or ranged reads -> a folder, safely
    list_entries / list_zip                    what an archive holds

Each name is imported from its module when first used: an upload does not load the
readers and the extractor (~8 ms of its start), nor a download the writers.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from argosy.artifacts.archive.codecs import Codec, compress, decompress, detect
    from argosy.artifacts.archive.entry import Entry, EntryType, Member
    from argosy.artifacts.archive.extract import (
        ExtractResult,
        extract_members,
        extract_tar,
        extract_zip,
    )
    from argosy.artifacts.archive.formats import FORMATS, Format, write_archive
    from argosy.artifacts.archive.limits import ExpansionRefused, ExtractLimits
    from argosy.artifacts.archive.listing import list_entries
    from argosy.artifacts.archive.tarreader import read_tar
    from argosy.artifacts.archive.tarwriter import write_tar
    from argosy.artifacts.archive.zipreader import ReadRange, list_zip, read_index, read_zip
    from argosy.artifacts.archive.zipwriter import write_zip

_WHERE = {
    "Codec": "codecs",
    "compress": "codecs",
    "decompress": "codecs",
    "detect": "codecs",
    "Entry": "entry",
    "EntryType": "entry",
    "Member": "entry",
    "ExtractResult": "extract",
    "extract_members": "extract",
    "extract_tar": "extract",
    "extract_zip": "extract",
    "FORMATS": "formats",
    "Format": "formats",
    "write_archive": "formats",
    "ExpansionRefused": "limits",
    "ExtractLimits": "limits",
    "list_entries": "listing",
    "read_tar": "tarreader",
    "write_tar": "tarwriter",
    "ReadRange": "zipreader",
    "list_zip": "zipreader",
    "read_index": "zipreader",
    "read_zip": "zipreader",
    "write_zip": "zipwriter",
}

__all__ = [
    "FORMATS",
    "Codec",
    "Entry",
    "EntryType",
    "ExpansionRefused",
    "ExtractLimits",
    "ExtractResult",
    "Format",
    "Member",
    "ReadRange",
    "compress",
    "decompress",
    "detect",
    "extract_members",
    "extract_tar",
    "extract_zip",
    "list_entries",
    "list_zip",
    "read_index",
    "read_tar",
    "read_zip",
    "write_archive",
    "write_tar",
    "write_zip",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
