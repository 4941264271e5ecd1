import ArgumentParser
import SystemPackage
import UnionMount

extension UnionMountCommand {
    /// `unionmount umount`: unmount a union (or everything under a path).
    struct Unmount: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "umount", abstract: "Unmount TARGET, retrying while it is busy.")

        @Flag(name: .long, help: "Detach lazily (MNT_DETACH).")
        var lazy = false
        @Flag(name: .long, help: "Unmount everything at or below TARGET, deepest first.")
        var recursive = false
        @Option(name: .long, help: "Retries while busy (EBUSY).")
        var retries = 50
        @OptionGroup var output: OutputOptions
        @Argument(help: "The mount point.")
        var target: String

        struct Report: Encodable {
            var target: String
            var outcome: String
            var unmounted: [String]
        }

        func run() throws {
            let mounter = Mounter()
            let options = UnmountOptions(retries: retries, lazy: lazy)
            do {
                var report = Report(target: target, outcome: UnmountOutcome.notMounted.rawValue, unmounted: [])
                if recursive {
                    report.unmounted = try mounter.unmountRecursively(FilePath(target), options: options).map(\.string)
                    report.outcome = report.unmounted.isEmpty ? UnmountOutcome.notMounted.rawValue : "unmounted"
                } else {
                    let outcome = try mounter.unmount(FilePath(target), options: options)
                    report.outcome = outcome.rawValue
                    if outcome != .notMounted { report.unmounted = [target] }
                }
                if output.json { try printJSON(report) } else { print("\(report.outcome): \(target)") }
            } catch let error as UnionMountError {
                throw failing(error)
            }
        }
    }
}
