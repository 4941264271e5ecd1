import ArgumentParser
import SystemPackage
import UnionMount

extension UnionMountCommand {
    /// `unionmount holders`: who keeps a mount busy, without unmounting it.
    struct Holders: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what holds TARGET: open files, working and root directories, copies in other mount "
                + "namespaces, mounts on top (what `umount` names when it stays busy).")

        @OptionGroup var output: OutputOptions
        @Argument(help: "The mount point.")
        var target: String

        struct Holder: Encodable {
            var kind: String
            var pid: Int32?
            var command: String?
            var path: String?
            var descriptor: Int?
            var namespace: UInt64?
            var description: String
        }

        struct Report: Encodable {
            var target: String
            var holders: [Holder]
            var unreadableProcesses: Int
            var truncated: Bool
        }

        static func holder(_ holder: MountHolder) -> Holder {
            var row = Holder(
                kind: "", pid: holder.processID, command: holder.command, description: holder.description)
            switch holder.kind {
            case .openFile(let descriptor, let path):
                (row.kind, row.descriptor, row.path) = ("open-file", descriptor, path.string)
            case .workingDirectory(let path): (row.kind, row.path) = ("cwd", path.string)
            case .rootDirectory(let path): (row.kind, row.path) = ("root", path.string)
            case .copyInMountNamespace(let namespace, let mountPoint):
                (row.kind, row.namespace, row.path) = ("mount-namespace", namespace, mountPoint.string)
            case .childMount(let path): (row.kind, row.path) = ("child-mount", path.string)
            @unknown default: row.kind = "other"
            }
            return row
        }

        func run() throws {
            let search = try reportingFailures { try MountTable.holders(of: FilePath(target)) }
            let report = Report(
                target: target, holders: search.holders.map(Self.holder),
                unreadableProcesses: search.unreadableProcesses, truncated: search.truncated)
            if output.json { return try printJSON(report) }
            if report.holders.isEmpty { print("nothing holds \(target)") }
            for holder in report.holders { print(holder.description) }
            if search.unreadableProcesses > 0 {
                print(
                    "(\(search.unreadableProcesses) processes could not be read: they ended, or belong to another user)"
                )
            }
            if search.truncated { print("(search limits reached: the list may be incomplete)") }
        }
    }
}
