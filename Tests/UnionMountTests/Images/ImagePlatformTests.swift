import Testing

@testable import UnionMount
@testable import UnionMountStore

@Suite struct ImagePlatformTests {
    @Test(
        "uname machine names become Go's",
        arguments: [
            ("x86_64", "linux/amd64"), ("aarch64", "linux/arm64"), ("armv7l", "linux/arm/v7"),
            ("armv6l", "linux/arm/v6"),
            ("armv5tel", "linux/arm/v5"), ("i686", "linux/386"), ("ppc64le", "linux/ppc64le"), ("s390x", "linux/s390x"),
            ("riscv64", "linux/riscv64"), ("loongarch64", "linux/loong64"),
        ])
    func uname(machine: String, platform: String) {
        #expect(ImagePlatform(unameMachine: machine).description == platform)
    }

    @Test("the host platform is this machine's")
    func host() {
        #expect(ImagePlatform.host.os == "linux")
        #if arch(x86_64)
            #expect(ImagePlatform.host.architecture == "amd64")
        #elseif arch(arm64)
            #expect(ImagePlatform.host.architecture == "arm64")
        #endif
    }

    @Test("matching: os and architecture, then the variant")
    func ranks() throws {
        let amd64 = ImagePlatform.linuxAMD64
        #expect(amd64.rank(ImagePlatform(os: "linux", architecture: "amd64")) == 0)
        #expect(amd64.rank(ImagePlatform(os: "Linux", architecture: "x86_64")) == 0)
        #expect(amd64.rank(ImagePlatform(os: "linux", architecture: "amd64", variant: "v1")) == 1)
        #expect(amd64.rank(ImagePlatform(os: "linux", architecture: "amd64", variant: "v3")) == nil)
        #expect(amd64.rank(ImagePlatform(os: "linux", architecture: "arm64")) == nil)
        #expect(amd64.rank(ImagePlatform(os: "windows", architecture: "amd64")) == nil)
        #expect(amd64.rank(ImagePlatform(os: "unknown", architecture: "unknown")) == nil)
        let arm64 = try ImagePlatform(parsing: "linux/arm64")
        #expect(arm64.rank(ImagePlatform(os: "linux", architecture: "arm64", variant: "v8")) == 0)
        #expect(arm64.rank(ImagePlatform(os: "linux", architecture: "aarch64")) == 0)
        let arm7 = try ImagePlatform(parsing: "linux/arm/v7")
        #expect(arm7.rank(ImagePlatform(os: "linux", architecture: "arm", variant: "v7")) == 0)
        #expect(arm7.rank(ImagePlatform(os: "linux", architecture: "arm")) == 1)
        #expect(arm7.rank(ImagePlatform(os: "linux", architecture: "arm", variant: "v6")) == 3)
        #expect(arm7.rank(ImagePlatform(os: "linux", architecture: "arm", variant: "v8")) == nil)
        #expect(arm7.rank(ImagePlatform(os: "linux", architecture: "armhf")) == 0)
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v1/x", "linux/am d64", ""] {
            let error = #expect(throws: UnionMountError.self) { try ImagePlatform(parsing: bad) }
            #expect(error?.code == .invalidArgument)
        }
    }
}
