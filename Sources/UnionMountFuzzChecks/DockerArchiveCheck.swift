import SystemPackage
import UnionMount
import UnionMountStore

/// Where ``FuzzChecks/dockerArchive(_:)`` writes its input: `/tmp/unionmount-fuzz-docker-archive-<pid>/input`.
final class DockerArchiveScratch: @unchecked Sendable {
    let directory: FilePath
    var input: FilePath { directory.appending("input") }

    static let shared = DockerArchiveScratch()

    private init() {
        directory = FilePath("/tmp/unionmount-fuzz-docker-archive-\(ProcessFacts.processID)")
        try? StoreFiles.removeTree(directory)
        _ = try? FileSystem.makeDirectory(directory, permissions: 0o755)
    }
}

extension FuzzChecks {
    /// A `docker save` or `oci-archive` tar read by ``TarFileMembers`` and resolved by ``DockerArchive`` (the
    /// only image, for linux/amd64, small JSON limits): opening and resolving return or throw a `UnionMountError`
    /// that names its input; for a resolved image, every layer's member exists and reads back exactly its size
    /// (and a limit one byte less is refused), or is refused with a typed error that names it.
    public static func dockerArchive(_ bytes: [UInt8]) throws(FuzzFailure) {
        let scratch = DockerArchiveScratch.shared
        do {
            let fd = try FileDescriptor.open(
                scratch.input, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
            defer { try? fd.close() }
            _ = try fd.writeAll(bytes)
        } catch {
            throw FuzzFailure(message: "the scratch directory cannot be used: \(error)", input: bytes)
        }
        let limits = ImageReadLimits(maximumJSONBytes: 64 << 10, maximumIndexDepth: 4, maximumArchiveMembers: 2000)
        let members: TarFileMembers
        let image: ResolvedImage
        do {
            members = try TarFileMembers(opening: scratch.input, limits: limits)
            image = try DockerArchive(reader: members, name: "fuzz.tar", limits: limits).resolve(
                .only, platform: .linuxAMD64)
        } catch {
            guard error.input != nil, !error.message.isEmpty else {
                throw FuzzFailure(message: "an error names no input: \(error)", input: bytes)
            }
            return
        }
        for layer in image.layers {
            guard let name = layer.blob.member else {
                throw FuzzFailure(message: "a layer of an archive names no member", input: bytes)
            }
            do {
                guard let size = try members.size(ofMember: name) else {
                    throw FuzzFailure(message: "the resolved layer member \(name) is absent", input: bytes)
                }
                guard size <= 1 << 20 else { continue }
                let read = try members.read(member: name, maximumSize: Int(size))
                guard let read, Int64(read.count) == size else {
                    throw FuzzFailure(
                        message: "the member \(name) read \(read?.count ?? -1) bytes, its size is \(size)",
                        input: bytes)
                }
                if size > 0, (try? members.read(member: name, maximumSize: Int(size) - 1)) != nil {
                    throw FuzzFailure(message: "the member \(name) was read past a smaller limit", input: bytes)
                }
            } catch let failure as FuzzFailure {
                throw failure
            } catch let error as UnionMountError {
                // A member that is a directory, a link out of the archive, a damaged stretch: typed and named.
                guard error.input != nil else {
                    throw FuzzFailure(message: "an error names no input: \(error)", input: bytes)
                }
            } catch {
                throw FuzzFailure(message: "an untyped error: \(error)", input: bytes)
            }
        }
    }

    /// Removes the scratch directory of ``dockerArchive(_:)``.
    public static func removeDockerArchiveScratch() {
        try? StoreFiles.removeTree(DockerArchiveScratch.shared.directory)
    }
}
