import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests {
    /// Changes written by real union filesystems: kernel overlay and fuse-overlayfs write their upper layers
    /// differently; both must give the list of ``expectedChanges``.
    @Suite struct LayerChangesMounts {
        let mounter = Mounter()
        static let fuseOverlayfs = "/usr/bin/fuse-overlayfs"

        /// The operations behind ``expectedChanges``, done through the merged directory.
        func operate(on merged: FilePath) throws {
            try writeFile(merged.appending("added.txt"), "new")
            let config = open(merged.appending("etc/config").string, O_WRONLY | O_APPEND)
            #expect(config >= 0)
            _ = write(config, "+", 1)
            close(config)
            #expect(unlink(merged.appending("old.txt").string) == 0)
            removeTree(merged.appending("var/cache"))
            #expect(!fileExists(merged.appending("var/cache")))
            removeTree(merged.appending("data"))
            #expect(mkdir(merged.appending("data").string, 0o755) == 0)
            try writeFile(merged.appending("data/new"), "n")
            #expect(mkdir(merged.appending("newdir").string, 0o755) == 0)
            let odd = FilePath(bytes: merged.bytes + Array("/newdir/odd".utf8) + [0xFF])
            try writeFile(odd, "odd")
            #expect(chmod(merged.appending("bin").string, 0o700) == 0)
            try writeFile(merged.appending("short-lived"), "gone again")
            #expect(unlink(merged.appending("short-lived").string) == 0)
        }

        /// Checks the list and both exports of `upper` over `lowers`.
        func expectChanges(upper: FilePath, lowers: [FilePath], scratch: Scratch, expected: [String]) throws {
            let changes = try LayerChanges.list(upper: upper, lowers: lowers, format: .overlayTrusted)
            #expect(changes.map(\.description) == expected)
            let upperView = try describedView([upper] + lowers, .overlayTrusted)
            for (index, output) in [WhiteoutFormat.aufs, .overlayTrusted].enumerated() {
                let layer = scratch.path.appending("export-\(index)")
                try LayerChanges.export(upper: upper, lowers: lowers, format: .overlayTrusted, to: layer, as: output)
                #expect(try describedView([layer] + lowers, output) == upperView)
                #expect(
                    try LayerChanges.list(upper: layer, lowers: lowers, format: output).map(\.description)
                        == expected)
                // No bookkeeping of either writer reaches the layer.
                let xattrs = try TreeManifest.read(layer).entries.flatMap(\.xattrs).map(\.name)
                #expect(!xattrs.contains { $0.hasPrefix("user.fuseoverlayfs.") || $0.hasSuffix(".origin") })
            }
        }

        @Test(
            "kernel overlay: the upper layer of a real mount",
            .enabled(if: KernelOverlay.available, KernelOverlay.skipReason))
        func kernelOverlay() throws {
            let scratch = try Scratch("changes")
            let lowers = try buildChangeLowers(in: scratch)
            let upper = try scratch.directory("upper")
            let work = try scratch.directory("work")
            let merged = try scratch.directory("merged")
            let spec = OverlaySpec(lowerDirectories: lowers, upperDirectory: upper, workDirectory: work)
            try mounter.mount(.overlay(spec), at: merged)
            do {
                try operate(on: merged)
            } catch {
                _ = try? mounter.unmount(merged)
                throw error
            }
            #expect(try mounter.unmount(merged) == .unmounted)
            // What overlay wrote: hard-linked whiteout devices, an opaque xattr, copy-up bookkeeping.
            let whiteout = try LayerIO.status(upper.appending("old.txt"))
            #expect(whiteout.isWhiteoutDevice)
            #expect(whiteout.linkCount >= 2)  // a link of the shared whiteout in the work directory
            #expect(try LayerIO.xattr(upper.appending("data"), "trusted.overlay.opaque") == [UInt8(ascii: "y")])
            #expect(try LayerIO.status(upper.appending("etc")).modificationTime.seconds == 1_600_000_000)
            try expectChanges(upper: upper, lowers: lowers, scratch: scratch, expected: expectedChanges)
        }

        @Test(
            "fuse-overlayfs: the upper layer of a real mount",
            .enabled(
                if: fileExists(FilePath(Self.fuseOverlayfs)) && fileExists("/dev/fuse"),
                "needs /usr/bin/fuse-overlayfs and /dev/fuse"))
        func fuseOverlay() throws {
            let scratch = try Scratch("changes")
            let lowers = try buildChangeLowers(in: scratch)
            let upper = try scratch.directory("upper")
            let work = try scratch.directory("work")
            let merged = try scratch.directory("merged")
            let options =
                "lowerdir=\(lowers.map(\.string).joined(separator: ":")),upperdir=\(upper.string),workdir=\(work.string)"
            // fuse-overlayfs daemonizes; its daemon keeps inherited descriptors, so it gets /dev/null, and the
            // parent is waited for with waitpid(2) (Foundation's Process never saw it exit here).
            try #require(spawnAndWait([Self.fuseOverlayfs, "-o", options, merged.string]) == 0)
            try #require(try mountEntry(at: merged)?.filesystemType == "fuse.fuse-overlayfs")
            do {
                try operate(on: merged)
            } catch {
                _ = try? mounter.unmount(merged)
                throw error
            }
            #expect(try mounter.unmount(merged) == .unmounted)
            // What fuse-overlayfs 1.10 wrote as root: a device whiteout, and for the recreated directory the opaque
            // xattr, a `.wh..wh..opq` file and a `.wh..opq` device.
            let whiteout = try LayerIO.status(upper.appending("old.txt"))
            #expect(whiteout.isWhiteoutDevice)
            #expect(try LayerIO.xattr(upper.appending("data"), "trusted.overlay.opaque") == [UInt8(ascii: "y")])
            #expect(fileExists(upper.appending("data/.wh..wh..opq")))
            #expect(try LayerIO.status(upper.appending("data/.wh..opq")).type == .characterDevice)
            // Unlike kernel overlay, fuse-overlayfs 1.10 gives a copied-up directory the current time (mode and
            // attributes are kept); directory times are not compared, so the list is the kernel's.
            #expect(try LayerIO.status(upper.appending("etc")).modificationTime.seconds != 1_600_000_000)
            try expectChanges(upper: upper, lowers: lowers, scratch: scratch, expected: expectedChanges)
        }
    }
}

/// Runs `arguments[0]` with stdin, stdout and stderr on /dev/null (posix_spawn(3)) and returns its wait status.
private func spawnAndWait(_ arguments: [String]) -> Int32 {
    var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in cArguments { free(argument) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var pid: pid_t = 0
    guard posix_spawn(&pid, arguments[0], &actions, nil, &cArguments, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}
