"""Archives for directory artifacts: streaming writers, readers, codecs and the safe
extractor. Everything moves as iterators of bytes chunks with bounded memory; nothing
shells out and no temporary archive file is ever written.

    write_archive / write_tar / write_zip      a local tree -> chunks
    compress / decompress / detect             zstd, gzip (ISA-L), none; by magic bytes
    extract_tar / extract_zip                  chunks or ranged reads -> a folder, safely
    list_entries / list_zip                    what an archive holds
"""

from argosy.artifacts.archive.codecs import Codec, compress, decompress, detect
from argosy.artifacts.archive.entry import Entry, EntryType, Member
from argosy.artifacts.archive.extract import (
    ExtractResult,
    extract_members,
    extract_tar,
    extract_zip,
)
from argosy.artifacts.archive.formats import FORMATS, Format, write_archive
from argosy.artifacts.archive.limits import ExtractLimits
from argosy.artifacts.archive.listing import list_entries
from argosy.artifacts.archive.tarreader import read_tar
from argosy.artifacts.archive.tarwriter import write_tar
from argosy.artifacts.archive.zipreader import ReadRange, list_zip, read_index, read_zip
from argosy.artifacts.archive.zipwriter import write_zip

__all__ = [
    "FORMATS",
    "Codec",
    "Entry",
    "EntryType",
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
