import ArgumentParser
import SystemPackage
import UnionMount

extension UnionMountCommand {
    /// `unionmount inspect TARGET`: one mount's branch state.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the branch state of the union mounted at TARGET.",
            discussion: """
                Of several mounts stacked on TARGET the topmost is shown. --json prints one mount object: \
                mountID, parentID, mountPoint, fsType, source, readOnly, branches (index, path, role, \
                permission, attributes, id, exists, idmapped, and idMapping where known), workdir, options, aufs.
                """)

        @OptionGroup var source: SourceOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The mount point.")
        var target: String

        func run() throws {
            let report = try reportingFailures {
                try inspectedReport(FilePath(target), source: source)
            }
            if output.json { return try printJSON(report) }
            printReport(report)
        }
    }
}

/// The report of the union mounted at `target`, or a ``UnionMountError/Code/notMounted`` error.
func inspectedReport(_ target: FilePath, source: SourceOptions) throws(UnionMountError) -> UnionMountReport {
    guard let report = try MountTable.report(at: target, source: source.table, aufsSysfs: source.sysfs)
    else {
        throw UnionMountError(
            code: .notMounted, message: "no union filesystem is mounted at \(target)", input: target.string)
    }
    return report
}
