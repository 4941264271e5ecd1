import SystemPackage
import Testing

@testable import UnionMount

#if canImport(Glibc)
    import Glibc
#endif

extension PrivilegedTests.ProbeVerification {
    /// An overlay with an upper layer in its own scratch directory: lower `l` holds file `a` and directory `dir`;
    /// `options` are appended to the mount(2) data. Mounted at `m` while `body` runs; whether the mount worked.
    func withOptionMount(
        _ tag: String, _ options: String, lower: FilePath? = nil,
        _ body: (_ scratch: Scratch, _ target: FilePath) throws -> Void = { _, _ in }
    ) throws -> Bool {
        let scratch = try Scratch("option-\(tag)")
        let lower = try lower ?? scratch.directory("l")
        try writeFile(lower.appending("a"), "a")
        try makeDirectories(lower.appending("dir"))
        try writeFile(lower.appending("dir/f"), "f")
        let (upper, work, target) = try (scratch.directory("u"), scratch.directory("w"), scratch.directory("m"))
        let data =
            "lowerdir=\(lower.string),upperdir=\(upper.string),workdir=\(work.string)"
            + (options.isEmpty ? "" : "," + options)
        guard mount("probe", target.string, "overlay", 0, data) == 0 else { return false }
        defer { #expect(umount2(target.string, 0) == 0) }
        try body(scratch, target)
        return true
    }

    /// The probe's answer against a real mount with the option: accepted means it mounts, refused means it does
    /// not, and unknown is a right answer only where the kernel cannot be asked (the legacy parser).
    func expectSupport(
        _ support: OverlayOptionSupport, _ option: String, mounted: Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        switch support {
        case .accepted:
            #expect(mounted, "\(option): probed accepted, but the mount failed", sourceLocation: sourceLocation)
        case .refused:
            #expect(!mounted, "\(option): probed refused, but the mount worked", sourceLocation: sourceLocation)
        case .unknown:
            #expect(
                !features.overlayParameterParsing, "\(option): unknown although overlay's parser could be asked",
                sourceLocation: sourceLocation)
        }
    }

    /// The names of the extended attributes of `path` (llistxattr(2)), none when it cannot be read.
    func xattrNames(_ path: FilePath) -> [String] {
        (try? FileSystem.extendedAttributeNames(path)) ?? []
    }

    @Test("volatile: as probed; a volatile mount leaves work/incompat/volatile, a plain one does not")
    func volatileOption() throws {
        let plain = try withOptionMount("plain", "") { scratch, _ in
            #expect(!fileExists(scratch.path.appending("w/work/incompat/volatile")))
        }
        #expect(plain == features.overlay, "a plain overlay mount: \(plain), overlay probed: \(features.overlay)")
        let mounted = try withOptionMount("volatile", "volatile") { scratch, _ in
            #expect(fileExists(scratch.path.appending("w/work/incompat/volatile")))
        }
        expectSupport(features.volatile, "volatile", mounted: mounted)
    }

    @Test("index: as probed; index=on makes work/index, index=off does not")
    func indexOption() throws {
        let off = try withOptionMount("index-off", "index=off") { scratch, _ in
            #expect(!fileExists(scratch.path.appending("w/index")))
        }
        let on = try withOptionMount("index-on", "index=on") { scratch, target in
            #expect(fileExists(scratch.path.appending("w/index")))
            let entry = try mountEntry(at: target)
            #expect(entry?.superOptions.contains("index=on") == true)
        }
        expectSupport(features.index, "index=on", mounted: on && off)
    }

    @Test("redirect_dir: as probed; renaming a lower directory records overlay.redirect, without it EXDEV")
    func redirectDirectoryOption() throws {
        let off = try withOptionMount("redirect-off", "redirect_dir=off") { _, target in
            #expect(rename(target.appending("dir").string, target.appending("moved").string) != 0)
            #expect(errno == EXDEV)
        }
        let on = try withOptionMount("redirect-on", "redirect_dir=on") { scratch, target in
            #expect(rename(target.appending("dir").string, target.appending("moved").string) == 0)
            #expect(readFile(target.appending("moved/f")) == "f")
            #expect(xattrNames(scratch.path.appending("u/moved")).contains("trusted.overlay.redirect"))
        }
        expectSupport(features.redirectDirectory, "redirect_dir=on", mounted: on && off)
    }

    @Test("metacopy: as probed; chmod of a lower file copies up metadata only with metacopy=on")
    func metacopyOption() throws {
        let off = try withOptionMount("metacopy-off", "metacopy=off") { scratch, target in
            #expect(chmod(target.appending("a").string, 0o600) == 0)
            #expect(!xattrNames(scratch.path.appending("u/a")).contains("trusted.overlay.metacopy"))
            #expect(readFile(scratch.path.appending("u/a")) == "a", "data copied up")
        }
        let on = try withOptionMount("metacopy-on", "metacopy=on") { scratch, target in
            #expect(chmod(target.appending("a").string, 0o600) == 0)
            #expect(xattrNames(scratch.path.appending("u/a")).contains("trusted.overlay.metacopy"))
            // The upper file has the size but not the data (a hole); the data still comes from the lower.
            #expect(readFile(scratch.path.appending("u/a")) == "\0", "no data copied up")
            #expect(readFile(target.appending("a")) == "a")
        }
        expectSupport(features.metacopy, "metacopy=on", mounted: on && off)
    }

    @Test("xino: as probed; on, auto and off mount; mountinfo shows xino only for layers on several filesystems")
    func inodeNumbersOption() throws {
        var accepted = true
        for value in ["on", "auto", "off"] {
            accepted =
                try withOptionMount("xino-\(value)", "xino=\(value)") { _, target in
                    // One filesystem: the kernel ignores xino ("xino=on is useless") and does not show it.
                    let entry = try mountEntry(at: target)
                    #expect(entry?.superOptions.contains { $0.hasPrefix("xino") } == false)
                } && accepted
        }
        expectSupport(features.inodeNumbers, "xino", mounted: accepted)
        guard accepted else { return }
        // A lower on a tmpfs, the upper on the scratch filesystem: the value asked for is shown (off is the default).
        let other = try Scratch("xino-tmpfs")
        #expect(mount("tmpfs", other.path.string, "tmpfs", 0, nil) == 0)
        defer { umount2(other.path.string, 0) }
        for value in ["on", "auto"] {
            let lower = other.path.appending(value)
            try makeDirectories(lower)
            let mounted = try withOptionMount("xino-multi-\(value)", "xino=\(value)", lower: lower) { _, target in
                let entry = try mountEntry(at: target)
                #expect(entry?.superOptions.contains("xino=\(value)") == true)
                #expect(readFile(target.appending("a")) == "a")
            }
            #expect(mounted)
        }
    }

    @Test("userxattr: as probed")
    func userXattrOption() throws {
        let mounted = try withOptionMount("userxattr", "userxattr") { _, target in
            let entry = try mountEntry(at: target)
            #expect(entry?.superOptions.contains("userxattr") == true)
        }
        expectSupport(features.userXattr, "userxattr", mounted: mounted)
    }

    @Test(
        "before overlay's own parser, options with a module parameter are accepted, the others unknown (all without overlay)"
    )
    func legacyAnswers() {
        guard !features.overlayParameterParsing else { return }
        let options = [
            features.redirectDirectory, features.index, features.metacopy, features.inodeNumbers, features.volatile,
            features.userXattr,
        ]
        guard features.overlay else {
            #expect(options.allSatisfy { $0 == .unknown }, "no overlay: nothing to ask, \(options)")
            return
        }
        let parameters = features.overlayModuleParameters
        #expect(features.redirectDirectory == (parameters["redirect_dir"] != nil ? .accepted : .unknown))
        #expect(features.index == (parameters["index"] != nil ? .accepted : .unknown))
        #expect(features.metacopy == (parameters["metacopy"] != nil ? .accepted : .unknown))
        #expect(features.inodeNumbers == (parameters["xino_auto"] != nil ? .accepted : .unknown))
        #expect(features.volatile == .unknown && features.userXattr == .unknown)
    }
}
