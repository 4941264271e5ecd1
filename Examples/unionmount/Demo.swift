import ArgumentParser
import Foundation
import SystemPackage
import UnionMount
import UnionMountStore

extension UnionMountCommand {
    /// `unionmount demo`: the classic two-directory union, end to end.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mount A (a, x) over B (b, x) at C, show the merged view, write through it, clean up.",
            discussion: """
                A is the writable top branch, as aufs `dirs=./A:./B` made it; here it is overlay's upper \
                directory. As a non-root user the demo re-runs itself in a user namespace (rootless overlay).
                """)

        func run() throws {
            if geteuid() != 0 && ProcessInfo.processInfo.environment["UNIONMOUNT_DEMO_USERNS"] == nil {
                try rerunInUserNamespace()
                return
            }
            let fm = FileManager.default
            let base = fm.temporaryDirectory.appendingPathComponent("unionmount-demo-\(getpid())").path
            let (a, b, c, work) = ("\(base)/A", "\(base)/B", "\(base)/C", "\(base)/.work")
            for directory in [a, b, c, work] {
                try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try "a from A\n".write(toFile: "\(a)/a", atomically: false, encoding: .utf8)
            try "x from A\n".write(toFile: "\(a)/x", atomically: false, encoding: .utf8)
            try "b from B\n".write(toFile: "\(b)/b", atomically: false, encoding: .utf8)
            try "x from B\n".write(toFile: "\(b)/x", atomically: false, encoding: .utf8)
            print("A = \(a)   (a, x)\nB = \(b)   (b, x)\n")

            let spec = OverlaySpec(
                lowerDirectories: [FilePath(b)], upperDirectory: FilePath(a), workDirectory: FilePath(work),
                source: "unionmount-demo")
            let mounter = Mounter()
            do {
                let plan = try mounter.mount(.overlay(spec), at: FilePath(c))
                print("mounted A over B at C with \(plan.strategy.rawValue):")
                plan.steps.forEach { print("  \($0.systemCall) \(describe($0))") }

                guard let report = try MountTable.report(at: FilePath(c)) else {
                    throw UnionMountError(code: .notMounted, message: "C does not show in the mount table")
                }
                print("\nbranch state (from the mount table):")
                printReport(report)

                print("\nC, each entry with the branch it comes from (MergedView of A and B):")
                try printMergedView(report, names: [a: "A", b: "B"], mergedRoot: c)

                try "written through C\n".write(toFile: "\(c)/new", atomically: false, encoding: .utf8)
                let (newInA, newInB) = (fm.fileExists(atPath: "\(a)/new"), fm.fileExists(atPath: "\(b)/new"))
                print("\nwrote C/new: in A? \(newInA)  in B? \(newInB)")
                try fm.removeItem(atPath: "\(c)/b")
                let kept = fm.fileExists(atPath: "\(b)/b")
                print("removed C/b: B/b still there? \(kept)  A/b: \(describeWhiteout("\(a)/b"))")

                print("\nC now:")
                try printMergedView(report, names: [a: "A", b: "B"], mergedRoot: c)

                let outcome = try mounter.unmount(FilePath(c))
                print("\nunmount C: \(outcome.rawValue)")
                try showIDMappedLayers(a: a, b: b, at: "\(base)/D", mounter: mounter)
            } catch let error as UnionMountError {
                _ = try? mounter.unmount(FilePath(c))
                throw failing(error)
            }
            if !MountTable.isMountPoint(FilePath(c)) { try fm.removeItem(atPath: base) }
        }

        /// Prints the merged view computed from the report's branches, each file with its content read through C.
        private func printMergedView(_ report: UnionMountReport, names: [String: String], mergedRoot: String)
            throws
        {
            let entries = try MergedView.entries(of: report)
            let width = entries.map(\.path.string.count).max() ?? 0
            for entry in entries {
                let branch = names[entry.branchPath.string] ?? "\(entry.branch)"
                var line = "  \(entry.path.string.padding(width))  <- \(branch)"
                if entry.type == .file,
                    let content = try? String(contentsOfFile: "\(mergedRoot)/\(entry.path)", encoding: .utf8)
                {
                    line += "   \(content.trimmingCharacters(in: .newlines))"
                }
                print(line)
            }
        }

        /// What is at `path`: overlay's whiteout is a character device 0/0.
        /// As root of the initial user namespace on a kernel with overlay over idmapped mounts (5.19+): A and B read-only with container ids
        /// 0… mapped to host ids 100000… at D, their owners as D shows them, and the rung the plan used.
        private func showIDMappedLayers(a: String, b: String, at d: String, mounter: Mounter) throws {
            guard geteuid() == 0, mounter.features.initialUserNamespace, mounter.features.idmappedLayers else { return }
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            let range = IDRange(inside: 0, outside: 100000, count: 65536)
            let spec = OverlaySpec(
                lowerDirectories: [FilePath(a), FilePath(b)], source: "unionmount-demo",
                idMapping: .ranges(uids: [range], gids: [range]))
            let plan = try mounter.mount(.overlay(spec), at: FilePath(d))
            defer { _ = try? mounter.unmount(FilePath(d)) }
            func owner(_ path: String) -> String {
                var status = stat()
                return lstat(path, &status) == 0 ? "\(status.st_uid):\(status.st_gid)" : "?"
            }
            print(
                "\nA and B again, read-only at D with ids 0:100000:65536 (idmapped layers, \(plan.idMappedLayers?.rawValue ?? "-")):"
            )
            print("  D/x owner \(owner("\(d)/x"))   A/x owner \(owner("\(a)/x"))")
            let outcome = try mounter.unmount(FilePath(d))
            print("unmount D: \(outcome.rawValue)")
        }

        private func describeWhiteout(_ path: String) -> String {
            var info = stat()
            guard lstat(path, &info) == 0 else { return "none" }
            let isWhiteout = info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0
            return isWhiteout ? "character device 0/0" : "not a whiteout"
        }

        /// Re-runs `unionmount demo` as root of a new user and mount namespace (`unshare(1)`), where an
        /// unprivileged user may mount overlay (Linux 5.11+); the library adds `userxattr` there by itself.
        private func rerunInUserNamespace() throws {
            print("not root: running the demo in a user namespace (rootless overlay)\n")
            fflush(nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = ["--user", "--map-root-user", "--mount", "--", CommandLine.arguments[0], "demo"]
            process.environment = ProcessInfo.processInfo.environment.merging(["UNIONMOUNT_DEMO_USERNS": "1"]) { $1 }
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
        }
    }
}
