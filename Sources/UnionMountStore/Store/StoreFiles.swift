import SystemPackage
import UnionMount

/// The file operations the layer store is built from: small records written atomically, directories made and
/// synced, trees removed without ever crossing into a mount. Every call goes through `FileSystem`; this adds
/// the store's policy (what is absent, what is damage) and its messages.
package enum StoreFiles {
    /// The largest record file read (a container's record lists up to 500 layer ids); anything bigger is damage.
    static let maximumRecordSize = 128 * 1024

    /// The contents of a small file, nil when it does not exist (open(2) with `O_NOFOLLOW`, read(2)).
    static func read(_ path: FilePath) throws(UnionMountError) -> [UInt8]? {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readAll(path, options: [.noFollow], limit: maximumRecordSize + 1)
        } catch {
            if error.systemCall == "open" && error.errno == .noSuchFileOrDirectory { return nil }
            throw UnionMountError.systemCall(
                error.systemCall, error.errno, message: "cannot read \(path.readable)", input: path.readable)
        }
        guard bytes.count <= maximumRecordSize else {
            throw UnionMountError.malformed(
                "\(path.readable) is larger than \(maximumRecordSize) bytes; it is not a store record",
                input: path.readable)
        }
        return bytes
    }

    /// Replaces `path` with `bytes` so that a reader, or a killed writer, sees the old contents or the new,
    /// never a mix: write(2) to a temporary file beside it and rename(2) it over `path`. When `durable`, the file
    /// is fsync(2)'ed before the rename and the directory after it, so a power cut keeps the new contents too.
    static func writeAtomically(_ bytes: [UInt8], to path: FilePath, durable: Bool = true) throws(UnionMountError) {
        let temporary = FilePath(bytes: path.bytes + Array(".tmp".utf8))
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(
                temporary, .writeOnly, options: [.create, .truncate, .noFollow], permissions: 0o644)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot write \(temporary.readable)", input: path.readable)
        }
        do {
            defer { FileSystem.close(fd) }
            do {
                try FileSystem.writeAll(fd, bytes)
            } catch {
                throw UnionMountError.systemCall(
                    "write", error, message: "cannot write \(temporary.readable)", input: path.readable)
            }
            if durable {
                do {
                    try FileSystem.sync(fd)
                } catch {
                    throw UnionMountError.systemCall(
                        "fsync", error, message: "cannot sync \(temporary.readable)", input: path.readable)
                }
            }
        }
        try rename(temporary, to: path)
        if durable { try syncDirectory(path.removingLastComponent()) }
    }

    /// rename(2); with `replacing: false`, renameat2(2) `RENAME_NOREPLACE`, so an existing `target` is EEXIST.
    static func rename(_ source: FilePath, to target: FilePath, replacing: Bool = true) throws(UnionMountError) {
        do {
            try FileSystem.rename(source, to: target, replacing: replacing)
        } catch {
            throw UnionMountError.systemCall(
                replacing ? "rename" : "renameat2", error,
                message: "cannot rename \(source.readable) to \(target.readable)", input: target.readable)
        }
    }

    /// fsync(2) of a directory, so the names created, renamed or removed in it survive a power cut.
    static func syncDirectory(_ path: FilePath) throws(UnionMountError) {
        let fd: FileDescriptor
        do {
            fd = try FileSystem.open(path, .readOnly, options: [.directory])
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot open directory \(path.readable)", input: path.readable)
        }
        defer { FileSystem.close(fd) }
        do {
            try FileSystem.sync(fd)
        } catch {
            throw UnionMountError.systemCall(
                "fsync", error, message: "cannot sync directory \(path.readable)", input: path.readable)
        }
    }

    /// mkdir(2); an existing directory is fine when `existing` says so.
    static func makeDirectory(
        _ path: FilePath, mode: UInt32 = 0o755, existing: Bool = true
    ) throws(UnionMountError) {
        do {
            try FileSystem.makeDirectory(path, permissions: mode)
        } catch {
            if error == .fileExists, existing, isDirectory(path) { return }
            throw UnionMountError.systemCall(
                "mkdir", error, message: "cannot create directory \(path.readable)", input: path.readable)
        }
    }

    /// Whether `path` is a directory (lstat(2): a symlink to one is not).
    static func isDirectory(_ path: FilePath) -> Bool { FileSystem.isDirectory(path) }

    /// Whether anything exists at `path` (lstat(2)).
    static func exists(_ path: FilePath) -> Bool { FileSystem.exists(path) }

    /// The names in a directory, `.` and `..` excluded, sorted; empty when it does not exist
    /// (opendir(3), readdir(3)).
    static func names(in directory: FilePath) throws(UnionMountError) -> [[UInt8]] {
        let stream: DirectoryStream
        do {
            stream = try DirectoryStream(directory)
        } catch {
            if error == .noSuchFileOrDirectory { return [] }
            throw UnionMountError.systemCall(
                "opendir", error, message: "cannot read directory \(directory.readable)", input: directory.readable)
        }
        let names: [[UInt8]]
        do {
            names = try stream.names()
        } catch {
            throw UnionMountError.systemCall(
                "readdir", error, message: "cannot read directory \(directory.readable)", input: directory.readable)
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }
}
