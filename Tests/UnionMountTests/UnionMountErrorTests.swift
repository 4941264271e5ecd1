import SystemPackage
import Testing

@testable import UnionMount
@testable import UnionMountStore

@Suite struct UnionMountErrorTests {
    @Test func codesMeanOneThingEach() {
        let codes: [UnionMountError.Code] = [
            .invalidSpec, .invalidArgument, .invalidState, .optionsTooLong, .systemCallFailed, .unsupported,
            .notMounted, .busy, .malformedInput, .notFound, .alreadyExists, .inUse,
        ]
        #expect(Set(codes.map(\.name)).count == codes.count)
    }

    @Test func aCauseIsKeptAndPrinted() {
        let read = UnionMountError.systemCall(
            "read", .ioError, message: "cannot read /s/store.conf", input: "/s/store.conf")
        var error = UnionMountError.invalidState("the store cannot be repaired", input: "/s")
        #expect(error.cause == nil)
        error.cause = read
        #expect(error.cause == read)
        #expect(error.description.contains("because: cannot read /s/store.conf"))
        #expect(error.description.contains("EIO"))
        #expect(error != UnionMountError.invalidState("the store cannot be repaired", input: "/s"))
    }

    @Test func storeIdsAreInvalidArgumentsNotSpecs() {
        let error = #expect(throws: UnionMountError.self) { try StoreIdentifier.validate("../x", input: "layer id") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.input == "layer id")
    }
}
