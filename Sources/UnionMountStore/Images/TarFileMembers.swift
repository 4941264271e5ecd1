import SystemPackage
import UnionMount

/// The members of a `docker save` archive or an `oci-archive` file, read with libarchive: the
/// ``ArchiveMemberReader`` that ``DockerArchive`` reads real archives through.
///
///     let archive = DockerArchive(reader: try TarFileMembers(opening: "/tmp/debian.tar"), name: "/tmp/debian.tar")
///     let image = try archive.resolve(.tag("debian:12"))
///
/// Opening reads every header once (data is skipped, not read) and keeps an index of member names, sizes and
/// offsets; each member read afterwards starts at its own header. The archive must be an uncompressed tar (what
/// `docker save` and `skopeo copy … docker-archive:` write); a compressed one is refused. Member names that are
/// absolute or hold `..`, a name that appears twice, and more members than
/// ``ImageReadLimits/maximumArchiveMembers`` are refused; links between members are resolved inside the archive
/// (`docker save` writes a layer shared by two images once and links the second `layer.tar` to it).
///
/// The corresponding system calls are `open(2)`, `fstat(2)` and `pread(2)` (libarchive decodes the headers).
public struct TarFileMembers: ArchiveMemberReader {
    /// The archive file.
    public let path: FilePath
    let members: TarArchiveMembers

    /// Opens and indexes the archive at `path`.
    ///
    /// - Throws: `UnionMountError.Code.notFound` when it does not exist; `UnionMountError.Code.invalidArgument`
    ///   when it is not a regular file; `UnionMountError.Code.malformedInput` naming the archive and the member
    ///   for a compressed or damaged archive or a refused member name; `UnionMountError.Code.systemCallFailed`.
    public init(opening path: FilePath, limits: ImageReadLimits = ImageReadLimits()) throws(UnionMountError) {
        self.path = path
        members = try TarArchiveMembers(opening: path, maximumMembers: limits.maximumArchiveMembers)
    }

    /// The size of the regular-file member `name` (links followed); nil when there is none.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the member when it is a directory, another kind of
    ///   file, or a link that leaves the archive or loops.
    public func size(ofMember name: String) throws(UnionMountError) -> Int64? {
        try members.regularMember(name)?.size
    }

    /// The bytes of the regular-file member `name`; nil when there is none.
    ///
    /// - Throws: as ``size(ofMember:)``; `UnionMountError.Code.malformedInput` when it holds more than
    ///   `maximumSize` bytes (nothing is read then) or the archive is damaged there.
    public func read(member name: String, maximumSize: Int) throws(UnionMountError) -> [UInt8]? {
        guard let member = try members.regularMember(name) else { return nil }
        return try members.read(member, maximumSize: maximumSize)
    }
}
