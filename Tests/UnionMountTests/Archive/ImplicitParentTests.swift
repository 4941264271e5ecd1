import Foundation
import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// A directory a layer needs but does not describe (umoci and Docker leave unchanged parents out of a diff) takes
/// the mode, owner and times of the directory the lower layers show there, as overlay's copy-up keeps them.
@Suite struct ImplicitParentTests {
    /// `lower/opt`: 0750, 1000:100 (as root), mtime 1,600,000,000.5.
    func lowerWithOpt(_ scratch: Scratch, _ name: String = "lower") throws -> FilePath {
        let lower = try scratch.directory(name)
        let opt = lower.appending("opt")
        try FileSystem.makeDirectory(opt, permissions: 0o750)
        try FileSystem.setPermissions(opt, 0o750)
        if geteuid() == 0 { try FileSystem.setOwner(opt, uid: 1000, gid: 100) }
        let time = FileTime(seconds: 1_600_000_000, nanoseconds: 500_000_000)
        try FileSystem.setTimes(opt, access: time, modification: time)
        return lower
    }

    func apply(_ entries: [TestArchive.Entry], format: WhiteoutFormat, lowers: [FilePath], scratch: Scratch)
        throws -> FilePath
    {
        let archive = scratch.path.appending("layer-\(lowers.count).tar")
        try TestArchive(entries).write(to: archive)
        let out = try scratch.directory("out-\(lowers.count)-\(entries.count)")
        var applier = LayerApplier(whiteoutFormat: format, rootless: false)
        applier.lowerDirectories = lowers
        _ = try applier.apply(archive: archive, into: out)
        return out
    }

    @Test("an implicit parent takes the lower directory's mode, owner and times; without lowers it is 0755")
    func takesTheLowerDirectory() throws {
        let scratch = try Scratch("implicit")
        let lower = try lowerWithOpt(scratch)
        let entries: [TestArchive.Entry] = [.file("./opt/later", "x"), .file("./new/deep/file", "y")]
        let out = try apply(entries, format: .aufs, lowers: [lower], scratch: scratch)
        let opt = try FileSystem.status(out.appending("opt"))
        #expect(opt.permissions == 0o750)
        #expect(opt.modificationTime == FileTime(seconds: 1_600_000_000, nanoseconds: 500_000_000))
        if geteuid() == 0 { #expect(opt.uid == 1000 && opt.gid == 100) }
        // Nothing below shows `new`: made 0755 by the caller.
        let new = try FileSystem.status(out.appending("new/deep"))
        #expect(new.permissions == 0o755 && new.uid == geteuid())
        let bare = try apply(entries, format: .aufs, lowers: [], scratch: scratch)
        #expect(try FileSystem.status(bare.appending("opt")).permissions == 0o755)
    }

    @Test("a whiteout, a file or an opaque directory above hides the lower directory; a described one is kept")
    func hiddenLowers() throws {
        let scratch = try Scratch("implicit-hidden")
        let bottom = try lowerWithOpt(scratch, "bottom")
        // aufs form: a whiteout of opt in the middle layer hides bottom's opt.
        let whiteout = try scratch.directory("whiteout")
        try Data().write(to: URL(fileURLWithPath: whiteout.appending(".wh.opt").string))
        let hidden = try apply(
            [.file("./opt/later", "x")], format: .aufs, lowers: [whiteout, bottom], scratch: scratch)
        #expect(try FileSystem.status(hidden.appending("opt")).permissions == 0o755)
        // A regular file of that name in between hides it too.
        let file = try scratch.directory("file")
        try Data("f".utf8).write(to: URL(fileURLWithPath: file.appending("opt").string))
        let shadowed = try apply(
            [.file("./opt/later", "x"), .file("./z", "")], format: .aufs, lowers: [file, bottom], scratch: scratch)
        #expect(try FileSystem.status(shadowed.appending("opt")).permissions == 0o755)
        // An opaque root in this layer hides every lower directory.
        let opaque = try apply(
            [.file("./.wh..wh..opq", ""), .file("./opt/later", "x")], format: .aufs, lowers: [bottom],
            scratch: scratch)
        #expect(try FileSystem.status(opaque.appending("opt")).permissions == 0o755)
        // A directory the archive describes keeps its own metadata.
        let described = try apply(
            [.directory("./opt", mode: 0o711), .file("./opt/later", "x"), .file("./a", ""), .file("./b", "")],
            format: .aufs, lowers: [bottom], scratch: scratch)
        #expect(try FileSystem.status(described.appending("opt")).permissions == 0o711)
    }

    @Test("overlay form: a 0/0 whiteout device or an opaque directory in a lower hides what is below it")
    func overlayForm() throws {
        guard geteuid() == 0 else {
            Issue.record("skipped: whiteout devices and trusted.overlay.* need root")
            return
        }
        let scratch = try Scratch("implicit-overlay")
        let bottom = try lowerWithOpt(scratch, "bottom")
        let middle = try scratch.directory("middle")
        try FileSystem.makeNode(middle.appending("opt"), type: .characterDevice, permissions: 0o600)
        let hidden = try apply(
            [.file("./opt/later", "x")], format: .overlayTrusted, lowers: [middle, bottom], scratch: scratch)
        #expect(try FileSystem.status(hidden.appending("opt")).permissions == 0o755)
        // bottom/var/opt hidden by an opaque var in the middle layer, which has no opt of its own.
        let deep = try scratch.directory("deep")
        try FileSystem.makeDirectory(deep.appending("var"), permissions: 0o755)
        try FileSystem.makeDirectory(deep.appending("var/opt"), permissions: 0o700)
        let opaqueMiddle = try scratch.directory("opaque-middle")
        try FileSystem.makeDirectory(opaqueMiddle.appending("var"), permissions: 0o755)
        try FileSystem.setExtendedAttribute(opaqueMiddle.appending("var"), "trusted.overlay.opaque", Array("y".utf8))
        let opaque = try apply(
            [.file("./var/opt/x", "x"), .file("./q", "")], format: .overlayTrusted, lowers: [opaqueMiddle, deep],
            scratch: scratch)
        #expect(try FileSystem.status(opaque.appending("var/opt")).permissions == 0o755)
        let seen = try apply(
            [.file("./var/opt/x", "x"), .file("./q", ""), .file("./r", "")], format: .overlayTrusted,
            lowers: [deep], scratch: scratch)
        #expect(try FileSystem.status(seen.appending("var/opt")).permissions == 0o700)
    }
}
