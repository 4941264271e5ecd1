import SystemPackage
import UnionMount

/// Whole-tree operations on layer directories.
public enum LayerTree {
    /// Copies the directory tree at `source` to the new directory `destination`, losslessly.
    ///
    /// Kept for every entry: the file type (regular file, directory, symbolic link, character and block device,
    /// FIFO, socket), the contents of regular files, the mode with the set-user-ID, set-group-ID and sticky bits,
    /// the owner and group, the access and modification times to the nanosecond (a directory's times are set
    /// after it has been filled), every extended attribute that llistxattr(2) shows (`user.`, `trusted.`,
    /// `security.`, ACLs), and the hard links between files of the tree (each group of names of one inode
    /// becomes one inode again). Names are bytes and are kept exactly. Symbolic links are never followed; holes
    /// in sparse files are written as zeros. Only the change times differ (the kernel sets them).
    ///
    /// Wraps lstat(2), opendir(3)/readdir(3), open(2)/read(2)/write(2) (`O_NOATIME` where allowed, so the
    /// source's access times stay), mkdir(2), mknod(2), symlink(2)/readlink(2), link(2), lchown(2), chmod(2),
    /// llistxattr(2)/lgetxattr(2)/lsetxattr(2) and utimensat(2).
    ///
    /// - Parameters:
    ///   - source: an existing directory.
    ///   - destination: a path that must not exist; its parent must. It may not lie inside `source`.
    /// - Throws: `UnionMountError.Code.invalidArgument` when `source` is not a directory or `destination` lies
    ///   inside it; `UnionMountError.Code.alreadyExists` when `destination` exists; `UnionMountError.Code.systemCallFailed` naming the path (`UnionMountError.input`)
    ///   when a file cannot be read or written. On failure the partial copy is removed.
    public static func copy(from source: FilePath, to destination: FilePath) throws(UnionMountError) {
        let from = (source)
        let to = (destination)
        let info = try LayerIO.status(from)
        guard info.type == .directory else {
            throw UnionMountError.invalidArgument("\(from.readable) is not a directory", input: from.readable)
        }
        guard try LayerIO.statusIfPresent(to) == nil else {
            throw UnionMountError(
                code: .alreadyExists, message: "the destination \(to.readable) already exists", input: to.readable)
        }
        try LayerIO.makeDirectory(to)
        do {
            var copier = TreeCopier()
            copier.excluded = try InodeKey(LayerIO.status(to))
            try copier.copyChildren(of: from, to: to)
            try TreeCopier.applyMetadata(to, from: info, xattrs: LayerIO.xattrs(from))
        } catch {
            try? LayerIO.removeTree(to)
            throw error
        }
    }
}
