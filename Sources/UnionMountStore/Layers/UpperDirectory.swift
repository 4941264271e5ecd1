import SystemPackage
import UnionMount

/// One directory of a container's writable layer, read in every form a writer may have used: kernel overlay
/// (character device 0/0 whiteouts, `<prefix>overlay.opaque`), fuse-overlayfs (the same plus `.wh..wh..opq`
/// and a `.wh..opq` device in every directory it makes opaque, `user.fuseoverlayfs.opaque` when it cannot
/// write `trusted.` attributes) and aufs (`.wh.` names).
struct UpperDirectory {
    /// A name that stays visible, with its lstat(2).
    struct Entry {
        var name: [UInt8]
        var info: FileStatus
    }

    /// A name this directory whites out, and the file that does it.
    struct Whiteout {
        var name: [UInt8]
        var path: FilePath
        var info: FileStatus
    }

    let path: FilePath
    let info: FileStatus
    /// Whether the directory hides the same directory of the lower layers.
    var opaque = false
    /// The opaque marker file, when the writer left one.
    var marker: (path: FilePath, info: FileStatus)?
    var entries: [Entry] = []
    var whiteouts: [Whiteout] = []

    init(_ path: FilePath, format: WhiteoutFormat) throws(UnionMountError) {
        self.path = path
        info = try LayerIO.status(path)
        var xattrWhiteouts = false
        if case .overlay(let prefix) = format, let value = try LayerIO.xattr(path, prefix + "overlay.opaque") {
            opaque = value == [UInt8(ascii: "y")]
            xattrWhiteouts = value == [UInt8(ascii: "x")]
        }
        if try LayerIO.xattr(path, OverlayXattrs.fuseOverlayPrefix + "opaque") == [UInt8(ascii: "y")] {
            opaque = true
        }
        var whitedOut: Set<[UInt8]> = []
        var candidates: [Entry] = []
        for name in try LayerIO.names(in: path) {
            let child = LayerIO.join(path, name)
            guard let entry = try LayerIO.statusIfPresent(child) else { continue }
            if name == WhiteoutConverter.opaqueMarker {
                opaque = true
                marker = (child, entry)
            } else if name.starts(with: WhiteoutConverter.bookkeepingPrefix) {
                continue
            } else if name.starts(with: WhiteoutConverter.whiteoutPrefix) {
                let target = Array(name.dropFirst(WhiteoutConverter.whiteoutPrefix.count))
                if !target.isEmpty { whiteouts.append(Whiteout(name: target, path: child, info: entry)) }
            } else if entry.type == .characterDevice && entry.specialDevice == 0 {
                whiteouts.append(Whiteout(name: name, path: child, info: entry))
            } else if xattrWhiteouts, entry.type == .regular, entry.size == 0,
                case .overlay(let prefix) = format, try LayerIO.xattr(child, prefix + "overlay.whiteout") != nil
            {
                whiteouts.append(Whiteout(name: name, path: child, info: entry))
            } else {
                candidates.append(Entry(name: name, info: entry))
            }
        }
        for whiteout in whiteouts { whitedOut.insert(whiteout.name) }
        // As in aufs, a whiteout wins over a name of the same directory.
        entries = candidates.filter { !whitedOut.contains($0.name) }
    }
}

/// The merged view of the lower layers, indexed for the comparisons of ``LayerChanges``.
struct LowerView {
    private var entries: [[UInt8]: MergedEntry] = [:]
    private var children: [[UInt8]: [[UInt8]]] = [:]

    init(lowers: [FilePath], format: WhiteoutFormat) throws(UnionMountError) {
        guard !lowers.isEmpty else { return }
        for entry in try MergedView.entries(branches: lowers, format: format) {
            let path = entry.path.bytes
            entries[path] = entry
            let parent = path.lastIndex(of: LayerIO.slash).map { Array(path[..<$0]) } ?? []
            let name = path.lastIndex(of: LayerIO.slash).map { Array(path[($0 + 1)...]) } ?? path
            children[parent, default: []].append(name)
        }
    }

    /// The visible entry at `path` (relative bytes).
    subscript(path: [UInt8]) -> MergedEntry? { entries[path] }

    /// The names visible in the directory `path` (empty: the root).
    func names(in path: [UInt8]) -> [[UInt8]] { children[path] ?? [] }

    /// The file behind a visible entry, as an absolute path's bytes.
    func source(of entry: MergedEntry) -> FilePath {
        LayerIO.join(entry.branchPath, entry.path.bytes)
    }
}
