import CUnionMountShim
import Foundation
import SystemPackage

@testable import UnionMount
@testable import UnionMountStore

#if canImport(Glibc)
    import Glibc
#endif

/// A five-layer image as an OCI/Docker registry would unpack it (`.wh.` whiteouts, `.wh..wh..opq` opaque
/// markers), plus an init layer: what the layer store imports in its tests.
///
/// - `l1` (base): `etc/passwd`, `etc/hostname`, `bin/sh` (0755) and its hard link `bin/sh2`, `lib/libc.so`, the
///   symlink `lib64 -> lib`, `opt/app/{a,b}`, `var/log/messages`, `usr/share/doc/readme`, the FIFO `run/fifo`;
/// - `l2`: a new `etc/passwd`, `etc/.wh.hostname`, `usr/share/doc/readme2`;
/// - `l3`: `opt/app` made opaque, with `c`;
/// - `l4`: odd names (`odd name`, `co,lo:n=\`, a non-UTF-8 name) and a file with `user.note`;
/// - `l5`: `var/.wh.log`, `var/lib/x`;
/// - `init`: `etc/hostname`, `etc/resolv.conf`.
struct ImageFixture {
    static let layerNames = ["l1", "l2", "l3", "l4", "l5"]
    let directory: FilePath

    var layers: [FilePath] { Self.layerNames.map { directory.appending($0) } }
    var initLayer: FilePath { directory.appending("init") }

    init(in directory: FilePath) throws {
        self.directory = directory
        let l1 = directory.appending("l1")
        for path in ["etc", "bin", "lib", "opt/app", "var/log", "usr/share/doc", "run"] {
            try makeDirectories(l1.appending(path))
        }
        try writeFile(l1.appending("etc/passwd"), "root:x:0:0::/root:/bin/sh\n")
        try writeFile(l1.appending("etc/hostname"), "base\n")
        try writeFile(l1.appending("bin/sh"), "#!shell\n")
        chmod(l1.appending("bin/sh").string, 0o755)
        link(l1.appending("bin/sh").string, l1.appending("bin/sh2").string)
        try writeFile(l1.appending("lib/libc.so"), "ELF")
        symlink("lib", l1.appending("lib64").string)
        try writeFile(l1.appending("opt/app/a"), "a")
        try writeFile(l1.appending("opt/app/b"), "b")
        try writeFile(l1.appending("var/log/messages"), "boot\n")
        try writeFile(l1.appending("usr/share/doc/readme"), "read me\n")
        mkfifo(l1.appending("run/fifo").string, 0o600)

        let l2 = directory.appending("l2")
        try makeDirectories(l2.appending("etc"))
        try makeDirectories(l2.appending("usr/share/doc"))
        try writeFile(l2.appending("etc/passwd"), "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n")
        try writeFile(l2.appending("etc/.wh.hostname"), "")
        try writeFile(l2.appending("usr/share/doc/readme2"), "more\n")

        let l3 = directory.appending("l3")
        try makeDirectories(l3.appending("opt/app"))
        try writeFile(l3.appending("opt/app/.wh..wh..opq"), "")
        try writeFile(l3.appending("opt/app/c"), "c")

        let l4 = directory.appending("l4")
        try makeDirectories(l4)
        try writeFile(l4.appending("odd name"), "space")
        try writeFile(FilePath(bytes: l4.bytes + Array("/co,lo:n=\\".utf8)), "punctuation")
        try writeFile(FilePath(bytes: l4.bytes + [UInt8(ascii: "/"), 0x63, 0x61, 0x66, 0xE9]), "latin-1")
        try writeFile(l4.appending("noted"), "with an xattr")
        _ = "v".withCString { CUnionMount_lsetxattr(l4.appending("noted").string, "user.note", $0, 1, 0) }

        let l5 = directory.appending("l5")
        try makeDirectories(l5.appending("var/lib"))
        try writeFile(l5.appending("var/.wh.log"), "")
        try writeFile(l5.appending("var/lib/x"), "x")

        try makeDirectories(initLayer.appending("etc"))
        try writeFile(initLayer.appending("etc/hostname"), "c1\n")
        try writeFile(initLayer.appending("etc/resolv.conf"), "nameserver 192.0.2.1\n")
    }

    /// What the tests do through a container's merged directory (argument 1), as a shell script, so the same
    /// steps run in this process's namespace and inside a user namespace.
    static let exercise = """
        set -eu
        cd "$1"
        echo new > new
        echo changed >> etc/passwd
        rm usr/share/doc/readme
        rm -r opt/app
        mkdir opt/app
        echo z > opt/app/z
        chmod 600 lib/libc.so
        mkdir -p home/user
        echo hi > home/user/.profile
        rm 'odd name'
        ln -s /new link-to-new
        """

    /// The manifest options for comparing merged views across backends: no times, no union-private xattrs,
    /// no hard-link groups (a copy-up breaks a link on one backend and not on another).
    static let mergedViewOptions = TreeManifest.Options(
        includeModificationTimes: false,
        ignoredXattrPrefixes: ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.", "security."],
        includeHardLinks: false)
}
