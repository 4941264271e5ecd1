import SystemPackage
import UnionMount

/// Writes a `docker save` archive in the OCI-in-archive form Docker 25+ writes: an OCI image layout
/// (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) plus `manifest.json`
/// (`[{"Config": "blobs/sha256/<config>", "RepoTags": [...], "Layers": ["blobs/sha256/<layer>", …]}]`), in one
/// plain tar. Readers of the legacy form (`docker load`, `skopeo … docker-archive:`) need only `manifest.json`
/// and the files it names; readers of OCI layouts find the layout.
///
/// The layout is written first into a directory (see ``OCILayoutWriter``), then packed: directories, then
/// files, each directory's names sorted, mode 0644 (0755 for directories), owner 0:0, modification time
/// `modificationTime`, so the same image gives the same archive.
struct DockerArchiveWriter {
    /// `manifest.json`'s one entry.
    static func manifestJSON(config: ImageDigest, repoTags: [String], layers: [ImageDigest]) -> [UInt8] {
        JSONValue.array([
            .object([
                .init(key: "Config", value: .string("blobs/sha256/" + config.hex)),
                .init(key: "RepoTags", value: .array(repoTags.map { .string($0) })),
                .init(key: "Layers", value: .array(layers.map { .string("blobs/sha256/" + $0.hex) })),
            ])
        ]).serialized
    }

    /// Packs the layout directory `layout` (which must hold `manifest.json` too) into the new file `file`
    /// (written beside it under a temporary name and renamed into place; an existing `file` is replaced).
    static func pack(layout: FilePath, to file: FilePath, modificationTime: Int64) throws(UnionMountError) {
        let parent = file.removingLastComponent()
        let temporary = (parent.isEmpty ? FilePath(".") : parent).appending(OCILayoutWriter.temporaryName())
        let output: FileDescriptor
        do {
            output = try FileSystem.open(
                temporary, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: 0o644)
        } catch {
            throw UnionMountError.systemCall(
                "open", error, message: "cannot create \(temporary.readable)", input: file.readable)
        }
        do throws(UnionMountError) {
            defer { FileSystem.close(output) }
            try write(layout: layout, to: output, modificationTime: modificationTime, file: file)
            do throws(Errno) {
                try FileSystem.rename(temporary, to: file)
            } catch {
                throw UnionMountError.systemCall(
                    "rename", error, message: "cannot name the archive \(file.readable)", input: file.readable)
            }
        } catch {
            try? FileSystem.unlink(temporary)
            throw error
        }
    }

    private static func write(layout: FilePath, to output: FileDescriptor, modificationTime: Int64, file: FilePath)
        throws(UnionMountError)
    {
        func failure(_ error: TarWriter.Failure) -> UnionMountError {
            var failure = UnionMountError(
                code: error.code, message: "\(file.readable): \(error.message)", input: file.readable)
            failure.errno = error.errno
            return failure
        }
        let time = FileTime(seconds: Int(modificationTime), nanoseconds: 0)
        do throws(TarWriter.Failure) {
            let tar = try TarWriter(writingTo: output, compression: .none)
            for directory in ["blobs/", "blobs/sha256/"] {
                try tar.write(
                    TarWriter.Header(
                        path: Array(directory.utf8), kind: .directory, permissions: 0o755, uid: 0, gid: 0,
                        modificationTime: time))
            }
            let blobs = layout.appending("blobs").appending("sha256")
            let names: [[UInt8]]
            do {
                names = try FileSystem.names(in: blobs).sorted { $0.lexicographicallyPrecedes($1) }
            } catch {
                throw TarWriter.Failure(code: .systemCallFailed, message: "cannot read \(blobs.readable)", errno: error)
            }
            var members: [(name: String, path: FilePath)] = names.map { name in
                let text = String(decoding: name, as: UTF8.self)
                return ("blobs/sha256/" + text, blobs.appending(text))
            }
            for name in ["index.json", "manifest.json", "oci-layout"] { members.append((name, layout.appending(name))) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buffer.deallocate() }
            for member in members {
                let fd: FileDescriptor
                let info: FileStatus
                do {
                    fd = try FileSystem.open(member.path, .readOnly, options: [.noFollow])
                    info = try FileSystem.status(of: fd)
                } catch {
                    throw TarWriter.Failure(
                        code: .systemCallFailed, message: "cannot read \(member.path.readable)", errno: error)
                }
                defer { FileSystem.close(fd) }
                try tar.write(
                    TarWriter.Header(
                        path: Array(member.name.utf8), kind: .regular, permissions: 0o644, uid: 0, gid: 0,
                        size: info.size, modificationTime: time))
                var remaining = info.size
                while remaining > 0 {
                    let count: Int
                    do {
                        count = try FileSystem.read(
                            fd,
                            into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(buffer.count, Int(remaining))]))
                    } catch {
                        throw TarWriter.Failure(
                            code: .systemCallFailed, message: "cannot read \(member.path.readable)", errno: error)
                    }
                    guard count > 0 else {
                        throw TarWriter.Failure(
                            code: .invalidState, message: "\(member.path.readable) shrank while packed")
                    }
                    try tar.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                    remaining -= Int64(count)
                }
            }
            _ = try tar.finish()
        } catch {
            throw failure(error)
        }
    }
}
