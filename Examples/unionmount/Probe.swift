import ArgumentParser
import UnionMount

extension UnionMountCommand {
    /// `unionmount probe`: what this kernel supports.
    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what this kernel supports for union mounts (probed, never by version number).")

        @OptionGroup var output: OutputOptions

        func run() throws {
            let features = KernelFeatures.current
            if output.json { return try printJSON(features) }
            let rows: [(String, String)] = [
                ("overlay", "\(features.overlay)"),
                ("aufs", "\(features.aufs)"),
                ("fuse", "\(features.fuse)"),
                ("fuse-overlayfs", features.fuseOverlayfsProgram ?? "not found"),
                ("new mount API", "\(features.newMountAPI)"),
                ("overlay parameter parsing (6.5+)", "\(features.overlayParameterParsing)"),
                ("lowerdir+ (6.8+)", "\(features.appendLowerDirectory)"),
                ("layer fds (6.13+)", "\(features.layerFileDescriptors)"),
                ("data-only layers", "\(features.dataOnlyLayers)"),
                ("userxattr", features.userXattr.rawValue),
                ("redirect_dir", features.redirectDirectory.rawValue),
                ("index", features.index.rawValue),
                ("xino", features.inodeNumbers.rawValue),
                ("metacopy", features.metacopy.rawValue),
                ("volatile", features.volatile.rawValue),
                ("statmount", "\(features.statmount)"),
                ("listmount", "\(features.listmount)"),
                ("initial user namespace", "\(features.initialUserNamespace)"),
                ("user namespaces", "\(features.userNamespaces)"),
                ("page size", "\(features.pageSize)"),
                ("layer limit", "\(features.maximumLayers)"),
            ]
            let width = rows.map(\.0.count).max() ?? 0
            for (name, value) in rows {
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
            }
        }
    }
}
