"""What the part names a ZIP's directory lists make of it: a package (one document) or an
archive of files. Names only, as services/ingest/packages.py walks them; pure, no I/O.

A package is known by a pair of parts at its root, never by one name alone: a plain archive
may hold a file called `[Content_Types].xml` or `mimetype` (at its root, or in a folder),
and taking it for a document would keep the user's files from them.
- Open Packaging Conventions (ECMA-376 Part 2: Office Open XML, XPS and OpenXPS, Visio,
  3MF, ...): `[Content_Types].xml` and the package relationships `_rels/.rels`. The kind is
  told by the folder (or part) of its main part; it changes the words the user reads, never
  whether the file is unpacked. Office Open XML is also known, as before, by
  `[Content_Types].xml` with a `word/`, `xl/` or `ppt/` folder: those folders are Office's
  own, while `3D/` or `Documents/` are folders anyone's archive may have.
- OpenDocument and EPUB (OCF): a `mimetype` entry with `META-INF/manifest.xml` (OpenDocument)
  or `META-INF/container.xml` (EPUB). Which one it is, is what `mimetype` holds
  (packages.py reads those few bytes): EPUB may carry a `META-INF/manifest.xml` too, and
  other formats (OpenOffice 1.x, Krita, ...) pair `mimetype` with a manifest, so the pair
  alone does not name the type.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.sniff import EPUB, MODEL_3MF, OFFICE, OPC_PACKAGE, OPENDOCUMENT, VISIO, XPS

CONTENT_TYPES = b"[content_types].xml"
RELATIONSHIPS = b"_rels/.rels"
MIMETYPE = b"mimetype"
MANIFEST = b"meta-inf/manifest.xml"
CONTAINER = b"meta-inf/container.xml"
OFFICE_FOLDERS = (b"word/", b"xl/", b"ppt/")
# The main part's folder (or, for XPS, its document sequence at the root) of each other
# kind: the layout their producers write (XPS: `FixedDocSeq.fdseq` and `Documents/1/...`).
_OPC_KINDS = (
    (b"visio/", VISIO),
    (b"3d/", MODEL_3MF),
    (b"documents/", XPS),
)
_XPS_SEQUENCE = b".fdseq"
# What each type's `mimetype` needs beside it.
COMPANIONS = {OPENDOCUMENT: MANIFEST, EPUB: CONTAINER}


@dataclass(slots=True)
class PackageParts:
    """The parts seen so far, fed one name at a time (as packages.part_name gives them:
    lower case, `/` separators, no leading `./`)."""

    content_types: bool = False
    relationships: bool = False
    office: bool = False
    # The first OPC kind whose folder was seen ('' none yet).
    kind: str = ""
    manifest: bool = False
    container: bool = False

    def see(self, name: bytes) -> None:
        self.content_types = self.content_types or name == CONTENT_TYPES
        self.relationships = self.relationships or name == RELATIONSHIPS
        self.office = self.office or name.startswith(OFFICE_FOLDERS)
        self.manifest = self.manifest or name == MANIFEST
        self.container = self.container or name == CONTAINER
        if not self.kind:
            self.kind = _opc_kind(name)

    def settled(self) -> str:
        """The package type the names seen so far prove, whatever names follow ('' none):
        the walk may stop here."""
        if self.content_types and self.office:
            return OFFICE
        if self.content_types and self.relationships and self.kind:
            return self.kind
        return ""

    def finished(self) -> str:
        """The package type once every name is seen ('' for an archive of files): an OPC
        package of no kind named, if nothing settled it before."""
        if found := self.settled():
            return found
        if self.content_types and self.relationships:
            return OPC_PACKAGE
        return ""

    @property
    def companion(self) -> bool:
        """Whether a part that a `mimetype` entry needs beside it was seen."""
        return self.manifest or self.container

    def confirms(self, declared: str) -> bool:
        """Whether the type a `mimetype` entry names has its own companion part."""
        companion = COMPANIONS.get(declared)
        return companion is not None and (
            self.manifest if companion == MANIFEST else self.container
        )


def _opc_kind(name: bytes) -> str:
    if b"/" not in name and name.endswith(_XPS_SEQUENCE):
        return XPS
    for folder, kind in _OPC_KINDS:
        if name.startswith(folder):
            return kind
    return ""
