import ArgumentParser
import Foundation
import SystemPackage
import UnionMount

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
            for directory in [a, b, c, work] { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) }
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

                print("\nC, each entry with the branch it comes from:")
                for name in try fm.contentsOfDirectory(atPath: c).sorted() {
                    let from = fm.fileExists(atPath: "\(a)/\(name)") ? "A" : "B"
                    let content = (try? String(contentsOfFile: "\(c)/\(name)", encoding: .utf8)) ?? ""
                    print("  \(name)  <- \(from)   \(content.trimmingCharacters(in: .newlines))")
                }

                print("\nbranch state (from /proc/self/mountinfo):")
                if let entry = try MountInfo.read().last(where: { $0.mountPoint == FilePath(c) }),
                    let layout = entry.overlayLayout
                {
                    print("  mount \(entry.mountID) \(entry.filesystemType) source=\(entry.source)")
                    if let upper = layout.upperDirectory { print("  0 upper rw  \(upper)") }
                    for (index, lower) in layout.lowerDirectories.enumerated() {
                        print("  \(index + 1) lower ro  \(lower)")
                    }
                    if let work = layout.workDirectory { print("  workdir    \(work)") }
                }

                try "written through C\n".write(toFile: "\(c)/new", atomically: false, encoding: .utf8)
                print("\nwrote C/new: in A? \(fm.fileExists(atPath: "\(a)/new"))  in B? \(fm.fileExists(atPath: "\(b)/new"))")

                let outcome = try mounter.unmount(FilePath(c))
                print("unmount C: \(outcome.rawValue)")
            } catch let error as UnionMountError {
                _ = try? mounter.unmount(FilePath(c))
                throw failing(error)
            }
            if !isMountPoint(FilePath(c)) { try fm.removeItem(atPath: base) }
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
