import UnionMount

/// Reads the members of an archive by name: the one thing image resolution needs from a `docker save` tar or an
/// `oci-archive` (``TarFileMembers`` reads a real archive file with libarchive; tests use an in-memory one).
///
/// Names passed in are always checked by the caller first (``ArchiveMemberName``): relative, no `.` or `..`
/// component, no empty component.
public protocol ArchiveMemberReader {
    /// The size of the regular-file member `name`; nil when the archive has no such member.
    func size(ofMember name: String) throws(UnionMountError) -> Int64?

    /// The bytes of the regular-file member `name`; nil when the archive has no such member.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming the member when it holds more than `maximumSize`
    ///   bytes (without reading more than `maximumSize + 1`).
    func read(member name: String, maximumSize: Int) throws(UnionMountError) -> [UInt8]?
}

/// The check every member name from untrusted metadata (`manifest.json`'s `Config` and `Layers`) passes before
/// it is looked up.
public enum ArchiveMemberName {
    /// Throws `UnionMountError.Code.malformedInput` naming `origin` (`manifest.json: [0].Layers[2]`) unless
    /// `name` is 1 to 4096 bytes, relative, and made of components that are neither empty, `.` nor `..`, with no
    /// NUL.
    public static func validate(_ name: String, origin: String) throws(UnionMountError) {
        func refuse(_ why: String) -> UnionMountError {
            UnionMountError.malformed("\(origin): the member name \(name.debugDescription) \(why)", input: origin)
        }
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 4096 else { throw refuse("must be 1 to 4096 bytes") }
        guard !bytes.contains(0) else { throw refuse("holds a NUL byte") }
        guard bytes[0] != UInt8(ascii: "/") else { throw refuse("is absolute") }
        for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if component.isEmpty { throw refuse("has an empty component") }
            if component.elementsEqual("..".utf8) { throw refuse("leaves the archive (a '..' component)") }
            if component.elementsEqual(".".utf8) { throw refuse("has a '.' component") }
        }
    }
}
