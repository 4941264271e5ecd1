#pragma once
// libarchive: the tar reader (ustar, pax, GNU) and the gzip/zstd decompressors of layer application, and its
// writer, which the tests use to craft exact archives (hostile ones included). Only `Archive/TarStream*.swift`
// calls it.
#include <archive.h>
#include <archive_entry.h>
