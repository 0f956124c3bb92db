
/// Where the request body comes from; the FastCGI layer provides it.
public protocol BodyStream: AnyObject {
    /// Reads up to `buffer.count` bytes; 0 means the body has ended. Throws when the body broke
    /// off (a stalled or vanished peer), so that a cut body is never taken for a whole one.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// An HTTP request as the application sees it: method, path, parameters and body.
public final class Request {
    public let method: String
    public let path: String
    public let contentType: String
    /// nil when the client sent no length (a streamed body).
    public let contentLength: Int?
    public let requestId: String
    public let remoteAddress: String
    public let authorization: String?
    public let queryString: String
    /// Query parameters merged with form-body parameters (a body value wins).
    public package(set) var params: Params
    public let body: BodyStream?

    public init(method: String, path: String, queryString: String = "", contentType: String = "",
                contentLength: Int? = nil, requestId: String, remoteAddress: String = "",
                authorization: String? = nil, params: Params = Params(), body: BodyStream? = nil) {
        self.method = method
        self.path = path
        self.queryString = queryString
        self.contentType = contentType
        self.contentLength = contentLength
        self.requestId = requestId
        self.remoteAddress = remoteAddress
        self.authorization = authorization
        self.params = params
        self.body = body
    }

    /// The media type without parameters, lower-cased (`multipart/form-data`).
    public var mediaType: String {
        let base = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        return base.trimmedSpaces.lowercased()
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (no Foundation needed).
    package var trimmedSpaces: String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars = scalars.dropLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
