import ArgumentParser
import UnionMount

extension UnionMountCommand {
    /// `unionmount list`: every union mount with its branches.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every union mount (overlay, aufs, fuse-overlayfs) with its branches, top first.",
            discussion: "--json prints an array of mount objects, the same objects `inspect --json` prints.")

        /// A filesystem type to list.
        enum Kind: String, ExpressibleByArgument, CaseIterable {
            case overlay, aufs
            case fuseOverlayfs = "fuse-overlayfs"

            /// The type as the mount table shows it.
            var filesystemType: String { self == .fuseOverlayfs ? "fuse.fuse-overlayfs" : rawValue }
        }

        @Option(name: .long, help: "Only mounts of this type (repeatable).")
        var type: [Kind] = []
        @OptionGroup var source: SourceOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let types = type.isEmpty ? nil : Set(type.map(\.filesystemType))
            let reports = try reportingFailures {
                try MountTable.reports(source: source.table, aufsSysfs: source.sysfs, types: types)
            }
            if output.json { return try printJSON(reports) }
            for (index, report) in reports.enumerated() {
                if index > 0 { print() }
                printReport(report)
            }
        }
    }
}
