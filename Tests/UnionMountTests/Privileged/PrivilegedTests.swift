import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

/// Every test that mounts for real. Serialized (mount tables are process-wide state) and enabled only as root
/// inside a private mount namespace; `.ci/test` provides one with `unshare -m --propagation private`.
@Suite(.serialized, .enabled(if: TestEnvironment.canMount, TestEnvironment.mountSkipReason))
struct PrivilegedTests {}

/// What a test that forces the new mount API needs: overlay's `lowerdir+` (Linux 6.8+), as the library probes it.
/// On older kernels (the kernel matrix's 6.1, `Tests/kernels/run`) the planner refuses that strategy, so those
/// tests and test cases are skipped there rather than failing.
enum NewMountAPI {
    static let available = KernelFeatures.current.appendLowerDirectory
    static let skipReason: Comment = "needs overlay's lowerdir+ (Linux 6.8+) for the new mount API"
    /// Every strategy a test may force on this kernel: `.newMountAPI` only where it is available.
    static let forcibleStrategies: [MountStrategy] = (available ? [.newMountAPI] : []) + [.legacy, .legacyRelative]
}

/// A stack of layers for one test: each layer `i` holds `only-<i>` and a shared file `x` saying which layer
/// it came from, so the merged view shows whether the order is right.
struct LayerStack {
    let scratch: Scratch
    let lowers: [FilePath]
    let upper: FilePath
    let work: FilePath
    let target: FilePath

    /// - Parameters:
    ///   - count: lower layers.
    ///   - nameBytes: the bytes of each layer's directory name before its index.
    init(
        count: Int, nameBytes: [UInt8], upperName: [UInt8] = Array("upper".utf8), workName: [UInt8] = Array("work".utf8)
    )
        throws
    {
        scratch = try Scratch("stack")
        var lowers: [FilePath] = []
        for index in 0..<count {
            let layer = try scratch.directory(nameBytes + Array("-\(index)".utf8))
            try writeFile(layer.appending("only-\(index)"), "\(index)")
            try writeFile(layer.appending("x"), "from \(index)")
            lowers.append(layer)
        }
        self.lowers = lowers
        upper = try scratch.directory(upperName)
        work = try scratch.directory(workName)
        target = try scratch.directory("merged")
    }

    func spec(writable: Bool = true) -> OverlaySpec {
        OverlaySpec(
            lowerDirectories: lowers, upperDirectory: writable ? upper : nil, workDirectory: writable ? work : nil)
    }

    /// Checks the merged view: every layer's own file, and `x` from the top layer.
    func expectMergedView(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(readFile(target.appending("x")) == "from 0", sourceLocation: sourceLocation)
        for index in [0, lowers.count / 2, lowers.count - 1] {
            #expect(readFile(target.appending("only-\(index)")) == "\(index)", sourceLocation: sourceLocation)
        }
    }
}

/// A directory name of about `length` bytes, so layer paths reach ~100 bytes.
func longName(_ length: Int) -> [UInt8] {
    Array(String(repeating: "layer", count: length / 5 + 1).utf8.prefix(length))
}
