import ArgumentParser
import SystemPackage
import UnionMount
import UnionMountStore

extension UnionMountCommand {
    /// `unionmount tree`: the merged view, each entry with the branch it comes from.
    struct Tree: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the merged view of a union, each entry with the branch it comes from.",
            discussion: """
                For a mounted union give TARGET: its branches are read from the mount table. For a union that is \
                not mounted give its branches instead: --upper and --lower (overlay format: character device 0/0 \
                whiteouts, overlay.opaque/overlay.whiteout xattrs, trusted. or with --userxattr user.), or \
                --branch (aufs format: .wh.<name> whiteouts, .wh..wh..opq opaque directories). Nothing is \
                mounted. --json prints an array of {path, type, branch, branchPath}, paths relative to the root \
                of the union, type one of file, directory, symlink, other.
                """)

        @Option(name: .long, help: ArgumentHelp("The writable top layer of an unmounted overlay.", valueName: "dir"))
        var upper: String?
        @Option(name: .long, help: ArgumentHelp("A lower layer, top first (repeatable).", valueName: "dir"))
        var lower: [String] = []
        @Option(name: .long, help: ArgumentHelp("An aufs branch, top first (repeatable).", valueName: "path[=perm]"))
        var branch: [String] = []
        @Flag(name: .long, help: "The overlay layers use user.overlay.* xattrs (a userxattr mount).")
        var userxattr = false
        @Flag(
            name: .customLong("fuse-overlayfs"),
            help: "The layers are fuse-overlayfs's: its .wh..wh..opq files and user.fuseoverlayfs.opaque count.")
        var fuseOverlayfs = false
        @OptionGroup var source: SourceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The mount point of a mounted union.")
        var target: String?

        func validate() throws {
            let listed = upper != nil || !lower.isEmpty || !branch.isEmpty
            if target == nil && !listed { throw ValidationError("give TARGET, or --upper/--lower, or --branch") }
            if target != nil && listed { throw ValidationError("give either TARGET or a branch list, not both") }
            if !branch.isEmpty && (upper != nil || !lower.isEmpty) {
                throw ValidationError("--branch (aufs) cannot be combined with --upper/--lower (overlay)")
            }
            if (userxattr || fuseOverlayfs) && (target != nil || !branch.isEmpty) {
                throw ValidationError("--userxattr and --fuse-overlayfs apply to --upper/--lower only")
            }
            if !branch.isEmpty { _ = try aufsBranches(branch) }
        }

        func run() throws {
            let entries = try reportingFailures { () throws -> [MergedEntry] in
                if let target {
                    return try MergedView.entries(of: inspectedReport(FilePath(target), source: source))
                }
                if !branch.isEmpty {
                    return try MergedView.entries(branches: aufsBranches(branch).map(\.path), format: .aufs)
                }
                let layers = (upper.map { [$0] } ?? []) + lower
                return try MergedView.entries(
                    branches: layers.map { FilePath($0) }, format: userxattr ? .overlayUser : .overlayTrusted,
                    fuseOverlayfs: fuseOverlayfs)
            }
            if output.json { return try printJSON(entries) }
            printTree(entries)
        }
    }
}

/// Parses `PATH[=PERM[+ATTR…]]` branch arguments as aufs reads a `br:` list; a malformed one is bad usage.
func aufsBranches(_ arguments: [String]) throws -> [AufsBranch] {
    if let bad = arguments.first(where: { $0.contains(",") || $0.contains(":") || $0.isEmpty }) {
        throw ValidationError("aufs branch '\(bad)' is empty or holds ',' or ':' (aufs has no escapes)")
    }
    do {
        return try AufsSpec(optionString: Array(("br:" + arguments.joined(separator: ":")).utf8)).branches
    } catch {
        throw ValidationError("\(error)")
    }
}

/// The merged view as text: each path (directories with `/`, symlinks with `@`), its branch index and root.
func printTree(_ entries: [MergedEntry]) {
    func name(_ entry: MergedEntry) -> String {
        entry.path.string + (entry.type == .directory ? "/" : entry.type == .symlink ? "@" : "")
    }
    let width = entries.map { name($0).count }.max() ?? 0
    for entry in entries {
        print("\(name(entry).padding(width))  [\(entry.branch)] \(entry.branchPath)")
    }
}
