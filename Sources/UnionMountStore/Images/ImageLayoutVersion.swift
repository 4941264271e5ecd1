import UnionMount

/// An OCI image layout's `oci-layout` file, `{"imageLayoutVersion": "1.0.0"}`.
public enum ImageLayoutVersion {
    /// The one layout version there is.
    public static let current = "1.0.0"

    /// Checks the bytes of an `oci-layout` file.
    ///
    /// - Throws: `UnionMountError.Code.malformedInput` naming `file` for malformed JSON or a missing
    ///   `imageLayoutVersion`; `UnionMountError.Code.unsupported` for another version.
    public static func check(_ bytes: [UInt8], file: String = "oci-layout") throws(UnionMountError) {
        let object = try JSONField.document(bytes, file: file).object()
        let version = try object.required("imageLayoutVersion")
        guard try version.string() == current else {
            throw version.unsupported("layout version \(try version.string().debugDescription) is not \(current)")
        }
    }
}
