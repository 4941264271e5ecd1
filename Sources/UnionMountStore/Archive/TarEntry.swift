import CLibArchive
import SystemPackage
import UnionMount

/// One tar header as libarchive decoded it (GNU long names and pax records already merged in), copied out of
/// libarchive's `archive_entry` so nothing points into its buffers.
///
/// Names are the raw bytes of the header: `archive_entry_pathname`, `archive_entry_hardlink` and
/// `archive_entry_symlink` give the multibyte form, which the tar reader fills with the header's bytes as they are
/// (a pax `path` is UTF-8 by definition; where the process locale cannot represent it libarchive warns and keeps
/// the original bytes, and `hdrcharset=BINARY` names are never converted). No wide-character getter is used.
struct TarEntry {
    /// What kind of file the entry is.
    enum Kind: Equatable {
        case regular, directory, symbolicLink, fifo, characterDevice, blockDevice, socket
        /// A hard link to an earlier entry (``TarEntry/linkTarget``).
        case hardLink
    }

    /// The path as stored.
    var path: [UInt8]
    var kind: Kind
    /// The symbolic link's target or the hard link's earlier entry.
    var linkTarget: [UInt8]
    /// `mode & 07777`.
    var permissions: UInt32
    var uid: Int64
    var gid: Int64
    /// The declared size of the contents (a sparse file's logical size).
    var size: Int64
    var modificationTime: FileTime
    /// nil when the archive carries none (ustar never does).
    var accessTime: FileTime?
    var deviceMajor: UInt32
    var deviceMinor: UInt32
    /// Extended attributes (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`), name as bytes, in archive order, one per name.
    var xattrs: [(name: [UInt8], value: [UInt8])]

    init(_ entry: OpaquePointer) throws(TarStream.Failure) {
        guard let name = archive_entry_pathname(entry) else {
            throw TarStream.Failure(code: .malformedInput, message: "an entry has no name")
        }
        path = Self.bytes(name)
        permissions = UInt32(archive_entry_perm(entry)) & 0o7777
        uid = archive_entry_uid(entry)
        gid = archive_entry_gid(entry)
        size = archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : 0
        modificationTime = FileTime(
            seconds: Int(archive_entry_mtime(entry)), nanoseconds: Int(archive_entry_mtime_nsec(entry)))
        accessTime =
            archive_entry_atime_is_set(entry) != 0
            ? FileTime(seconds: Int(archive_entry_atime(entry)), nanoseconds: Int(archive_entry_atime_nsec(entry)))
            : nil
        deviceMajor = UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry))
        deviceMinor = UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry))
        linkTarget = []
        if let hardLink = archive_entry_hardlink(entry) {
            kind = .hardLink
            linkTarget = Self.bytes(hardLink)
        } else {
            // AE_IF* (archive_entry.h), which are cast macros Swift does not import: the S_IF* values.
            switch UInt32(archive_entry_filetype(entry)) {
            case 0o100000: kind = .regular
            case 0o040000: kind = .directory
            case 0o120000:
                kind = .symbolicLink
                linkTarget = archive_entry_symlink(entry).map(Self.bytes) ?? []
            case 0o010000: kind = .fifo
            case 0o020000: kind = .characterDevice
            case 0o060000: kind = .blockDevice
            case 0o140000: kind = .socket
            default:
                throw TarStream.Failure(
                    code: .malformedInput,
                    message: "entry \(path.readable) has an unknown file type \(archive_entry_filetype(entry))")
            }
        }
        xattrs = []
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var count = 0
            var positions: [[UInt8]: Int] = [:]
            while archive_entry_xattr_next(entry, &name, &value, &count) == ARCHIVE_OK {
                guard let name else { continue }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
                let key = Self.bytes(name)
                // libarchive's pax writer stores each attribute twice (`LIBARCHIVE.xattr.` and `SCHILY.xattr.`),
                // and its reader returns both: one attribute per name, the last value.
                if let index = positions[key] {
                    xattrs[index].value = bytes
                } else {
                    positions[key] = xattrs.count
                    xattrs.append((key, bytes))
                }
            }
        }
    }

    private static func bytes(_ text: UnsafePointer<CChar>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: text, count: strlenOf(text)))
    }

    private static func strlenOf(_ text: UnsafePointer<CChar>) -> Int {
        var count = 0
        while text[count] != 0 { count += 1 }
        return count
    }
}
