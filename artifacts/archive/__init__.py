"""Archives: streaming tar/zip writers and readers, codecs, and the safe extractor."""
