import SystemPackage
import UnionMount

extension LayerApplication {
    /// The directory `components` (the root when empty), kept open for the next entry; the caller does not close
    /// it.
    func parentDirectory(_ components: [[UInt8]]) throws(UnionMountError) -> FileDescriptor {
        if components.isEmpty { return root }
        let path = ArchivePath.joined(components)
        if let cachedParent, cachedParent.path == path { return cachedParent.fd }
        let fd = try openDirectory(components)
        if let cachedParent { FileSystem.close(cachedParent.fd) }
        cachedParent = (path, fd)
        return fd
    }

    /// Opens the directory `components` as `O_PATH` with openat2(2) confined to the root and through no symbolic
    /// link, making missing directories (mode 0755) on the way; the root itself when empty. The caller closes a
    /// descriptor other than ``root``.
    func openDirectory(_ components: [[UInt8]]) throws(UnionMountError) -> FileDescriptor {
        if components.isEmpty { return root }
        do {
            return try openConfined(components)
        } catch  where error == .noSuchFileOrDirectory {
            try makeMissingDirectories(components)
        } catch {
            throw refusal(error, components)
        }
        do {
            return try openConfined(components)
        } catch {
            throw refusal(error, components)
        }
    }

    private func openConfined(_ components: [[UInt8]]) throws(Errno) -> FileDescriptor {
        try FileSystem.openConfined(
            FilePath(bytes: ArchivePath.joined(components)), .readOnly, options: [.pathOnly, .directory], in: root,
            resolution: Self.confined)
    }

    /// What a failed openat2(2) of an entry's parent means.
    private func refusal(_ error: Errno, _ components: [[UInt8]]) -> UnionMountError {
        let parent = ArchivePath.joined(components).readable
        switch error {
        case .tooManySymbolicLinkLevels:
            return malformed("its directory \(parent) passes through a symbolic link (never followed while writing)")
        case .notDirectory:
            return malformed("its directory \(parent) passes through something that is not a directory")
        case .improperLink:
            return malformed("its directory \(parent) crosses a mount point")
        default:
            return failed("openat2", error, "open its directory \(parent)")
        }
    }

    /// Creates the directories of `components` that do not exist yet, each relative to its confined parent.
    private func makeMissingDirectories(_ components: [[UInt8]]) throws(UnionMountError) {
        for depth in 1...components.count {
            let prefix = Array(components[..<depth])
            let path = ArchivePath.joined(prefix)
            if written[path] != nil { continue }
            let parent: FileDescriptor
            do {
                parent = depth == 1 ? root : try openConfined(Array(prefix.dropLast()))
            } catch {
                throw refusal(error, Array(prefix.dropLast()))
            }
            defer { if parent != root { FileSystem.close(parent) } }
            do {
                try FileSystem.makeDirectory(FilePath(bytes: prefix[depth - 1]), permissions: 0o755, relativeTo: parent)
                written[path] = .implicitDirectory
            } catch  where error == .fileExists {
                continue
            } catch {
                throw failed("mkdirat", error, "create its directory \(path.readable)")
            }
        }
    }

    /// Sets the permissions and times of every directory the archive described, deepest first, so that writing
    /// inside one no longer changes its time and a read-only one was writable while it was filled.
    func finishDirectories() throws(UnionMountError) {
        try adoptLowerDirectories()
        let ordered = pendingDirectories.enumerated().sorted {
            ($0.element.components.count, $0.offset) > ($1.element.components.count, $1.offset)
        }
        for (_, directory) in ordered {
            current = ArchivePath.joined(directory.components)
            if directory.components.isEmpty {
                do {
                    try FileSystem.setPermissions(of: root, directory.permissions)
                    try FileSystem.setTimes(of: root, access: directory.access, modification: directory.modification)
                } catch {
                    throw failed("futimens", error, "set the layer root's mode and times")
                }
                continue
            }
            guard let name = directory.components.last else { continue }
            let parent = try parentDirectory(Array(directory.components.dropLast()))
            let file = FilePath(bytes: name)
            do {
                try FileSystem.setPermissions(file, directory.permissions, relativeTo: parent)
            } catch {
                throw failed("fchmodat", error, "set the directory's mode")
            }
            do {
                try FileSystem.setTimes(
                    file, access: directory.access, modification: directory.modification, relativeTo: parent)
            } catch {
                throw failed("utimensat", error, "set the directory's times")
            }
        }
        current = nil
    }

    /// Gives every directory made only because an entry needed it the owner of the directory the lower layers
    /// show at that path, and queues its mode and times (see ``LayerApplier/lowerDirectories``).
    private func adoptLowerDirectories() throws(UnionMountError) {
        guard !applier.lowerDirectories.isEmpty else { return }
        let implicit = written.compactMap { $0.value == .implicitDirectory ? $0.key : nil }
        for path in implicit {
            let components = path.split(separator: UInt8(ascii: "/")).map(Array.init)
            // An opaque marker of this layer above it hides the lowers' directory.
            let hiddenHere = (0..<components.count).contains {
                written[ArchivePath.joined(Array(components[..<$0]) + [Self.opaqueMarker])] != nil
            }
            guard !hiddenHere, let lower = lowerDirectory(components), let name = components.last else { continue }
            current = path
            if applier.ownership == .archive {
                let parent = try parentDirectory(Array(components.dropLast()))
                do {
                    try FileSystem.setOwner(FilePath(bytes: name), uid: lower.uid, gid: lower.gid, relativeTo: parent)
                } catch {
                    throw failed("fchownat", error, "give the directory the owner of the one below")
                }
            }
            pendingDirectories.append(
                PendingDirectory(
                    components: components, permissions: lower.permissions, access: lower.accessTime,
                    modification: lower.modificationTime))
        }
        current = nil
    }

    /// The directory the lower layers show at `components`, as the union would: the topmost lower that has a
    /// directory there, unless a whiteout, a non-directory or an opaque directory on the way (in that lower or
    /// one above it) hides it. nil when none shows one.
    func lowerDirectory(_ components: [[UInt8]]) -> FileStatus? {
        let slash = UInt8(ascii: "/")
        for lower in applier.lowerDirectories {
            var directory = lower.bytes
            var hidden = false
            for (depth, name) in components.enumerated() {
                if case .aufs = applier.whiteoutFormat,
                    FileSystem.exists(FilePath(bytes: directory + [slash] + Array(".wh.".utf8) + name))
                {
                    return nil
                }
                let next = directory + [slash] + name
                let found: FileStatus?
                do {
                    found = try FileSystem.statusIfPresent(FilePath(bytes: next))
                } catch {
                    return nil
                }
                guard let status = found else { break }
                guard status.type == .directory else { return nil }
                if depth == components.count - 1 { return status }
                if isOpaque(FilePath(bytes: next)) { hidden = true }
                directory = next
            }
            if hidden { return nil }
        }
        return nil
    }

    /// Whether the lower directory at `path` hides the ones below it.
    private func isOpaque(_ path: FilePath) -> Bool {
        switch applier.whiteoutFormat {
        case .aufs:
            return FileSystem.exists(path.appending(".wh..wh..opq"))
        case .overlay(let prefix):
            return (try? FileSystem.extendedAttribute(path, prefix + "overlay.opaque")) == Array("y".utf8)
        }
    }
}
