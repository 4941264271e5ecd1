#pragma once
// libarchive: the tar reader (ustar, pax, GNU) and the gzip/zstd decompressors of layer application, and its
// writer (pax, gzip/zstd compressors) for layer export; the tests also use the writer to craft exact archives
// (hostile ones included). Only `Archive/TarStream.swift`, `TarEntry.swift` and `TarWriter.swift` call it.
#include <archive.h>
#include <archive_entry.h>
