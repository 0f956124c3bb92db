import ChatConfig
import ChatHTTP
import ChatPostgres
import ChatRouting
import Accounts
import Events
import Uploads

/// Moments (朋友圈, API.md §6): posts with text and up to 9 images, comments, praises, the
/// timeline, a user's posts and album. Who sees what is decided in `MomentsStore`; the timeline's
/// design and measurements are in docs/moments.md.
public final class MomentsFeature: AlbumSource {
    let uploads: UploadsFeature
    /// What a stored image's path is prefixed with in answers (the uploads URL and a slash).
    let imagePrefix: String

    static let maxTextLength = 2000
    static let maxCommentLength = 500
    static let maxImages = 9

    public init(config: Config, uploads: UploadsFeature) {
        self.uploads = uploads
        imagePrefix = config.uploadsURL + "/"
    }

    public func register(on router: Router) {
        router.add("/feed/addFeed", authInQuery: true, addFeed)
        router.add("/feed/addFeedComment", addFeedComment)
        router.add("/feed/addFeedPraise", addFeedPraise)
        router.add("/feed/cancelPraise", cancelPraise)
        router.add("/feed/delFeed", delFeed)
        router.add("/feed/delFeedComment", delFeedComment)
        router.add("/feed/getFeed", authInQuery: true, getFeed)
        router.add("/feed/getMyFeed", authInQuery: true, getMyFeed)
        router.add("/feed/getFriendFeed", authInQuery: true, getFriendFeed)
        router.add("/feed/getFeedAlbum", authInQuery: true, getFeedAlbum)
    }

    // MARK: posting

    func addFeed(_ c: RequestContext) throws -> Response {
        let text = try c.params.string("text", maxLength: MomentsFeature.maxTextLength) ?? ""
        let images = try storedImages(c.params.string("images", maxLength: 9 * 600) ?? "")
        guard !MomentsFeature.isBlank(text) || !images.isEmpty else {
            throw HTTPError.badRequest("a post needs text or images")
        }
        let result = try c.db.query(MomentsStore.addFeed(who: c.who, text: text, images: images))
        try c.adoptSession(from: result.first)
        guard let feedId: Int64 = try result.first?.decode("feed_id") else { throw HTTPError.unauthorized }
        return .ok(["feedId": .int(feedId)])
    }

    /// Text of nothing but spaces, tabs and line breaks (as the API documents a blank text).
    static func isBlank(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
    }

    /// The stored paths of `images` (comma-separated upload URLs): at most 9, each an image this
    /// server stored (400 otherwise).
    func storedImages(_ list: String) throws -> [String] {
        let urls = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard urls.count <= MomentsFeature.maxImages else { throw HTTPError.badRequest("at most 9 images") }
        return try urls.map { url in
            guard let stored = uploads.storedFile(url, imagesOnly: true) else {
                throw HTTPError.badRequest("images: not an image uploaded to this server")
            }
            return stored
        }
    }

    func addFeedComment(_ c: RequestContext) throws -> Response {
        let feedId = try c.params.requiredId("feedId")
        let text = try c.params.required("text", maxLength: MomentsFeature.maxCommentLength)
        guard !MomentsFeature.isBlank(text) else { throw HTTPError.invalid("text") }
        let replyId = try c.params.int64("replyId", in: 0...Int64.max) ?? 0
        let me = c.userId
        let db = try c.db
        return try db.transaction {
            let store = MomentsStore(db: db)
            guard let post = try store.postForReaction(feedId, by: me), !post.blocked else {
                return .outcome(-1, "no such post")
            }
            guard post.mayReact else { throw HTTPError.forbidden("only the author's friends may comment") }
            if replyId != 0, try !store.tookPart(replyId, in: feedId, authorId: post.authorId) {
                return .outcome(-1, "replyId has not taken part in this post")
            }
            let comment = try store.addComment(feedId: feedId, userId: me, replyId: replyId, text: text)
            let payload: JSON = ["feedId": .int(feedId), "commentId": .int(comment.id), "fromId": .int(me),
                                 "replyId": .int(replyId), "text": .string(text), "createTime": .int(comment.createTime)]
            // The author hears of every comment; the one answered, when they can see the answer
            // (they wrote the post, or are the commenter's friend: checked by the store's rules).
            var told: [Int64] = []
            if post.authorId != me { told.append(post.authorId) }
            if replyId != 0, replyId != me, replyId != post.authorId, try store.isFriend(replyId, of: me) {
                told.append(replyId)
            }
            try EventLog.append(db, to: told, type: "feed_comment", payload: payload)
            return .ok(["commentId": .int(comment.id)])
        }
    }

    func addFeedPraise(_ c: RequestContext) throws -> Response {
        let feedId = try c.params.requiredId("feedId")
        let me = c.userId
        let db = try c.db
        return try db.transaction {
            let store = MomentsStore(db: db)
            guard let post = try store.postForReaction(feedId, by: me), !post.blocked else {
                return .outcome(-1, "no such post")
            }
            guard post.mayReact else { throw HTTPError.forbidden("only the author's friends may praise") }
            // Praising twice is one praise, and tells the author once.
            if try store.addPraise(feedId: feedId, userId: me), post.authorId != me {
                try EventLog.append(db, to: [post.authorId], type: "feed_praise",
                                    payload: ["feedId": .int(feedId), "fromId": .int(me)])
            }
            return .ok()
        }
    }

    func cancelPraise(_ c: RequestContext) throws -> Response {
        let feedId = try c.params.requiredId("feedId")
        let store = MomentsStore(db: try c.db)
        if try store.removePraise(feedId: feedId, userId: c.userId) { return .ok() }
        // Nothing to take back is a success, on a post the user may see.
        return try store.canSee(feedId, viewer: c.userId) ? .ok() : .outcome(-1, "no such post")
    }

    func delFeed(_ c: RequestContext) throws -> Response {
        let feedId = try c.params.requiredId("feedId")
        guard try MomentsStore(db: c.db).deletePost(feedId, of: c.userId) else { return .outcome(-1, "no such post of yours") }
        return .ok()
    }

    func delFeedComment(_ c: RequestContext) throws -> Response {
        let commentId = try c.params.requiredId("commentId")
        guard try MomentsStore(db: c.db).deleteComment(commentId, by: c.userId) else {
            return .outcome(-1, "no such comment you may delete")
        }
        return .ok()
    }

    // MARK: reading

    /// `pageNo` (10 posts a page) or the `beforeId` cursor (the posts older than that one; it
    /// wins over `pageNo`): the upper bound and the offset of the page.
    func pageBounds(_ c: RequestContext) throws -> (before: Int64, offset: Int) {
        if let before = try c.params.id("beforeId") { return (before, 0) }
        return (Int64.max, (try c.params.pageNo() - 1) * MomentsStore.pageSize)
    }

    func page(_ c: RequestContext, _ page: MomentsStore.Page, destExists: Int64? = nil) throws -> Response {
        let (before, offset) = try pageBounds(c)
        let result = try c.db.query(MomentsStore.page(who: c.who, page, before: before, offset: offset,
                                                      imagePrefix: imagePrefix, destExists: destExists))
        try c.adoptSession(from: result.first)
        if destExists != nil, let row = result.first, try !row.decode("dest_exists", as: Bool.self) {
            return .outcome(-1, "no such user")
        }
        let (json, next) = try FeedWriter.list(result)
        return .ok(reserving: json.count, writingData: { $0.append(contentsOf: json) },
                   thenFields: [("nextBeforeId", .int(next))])
    }

    func getFeed(_ c: RequestContext) throws -> Response { try page(c, .timeline) }

    func getMyFeed(_ c: RequestContext) throws -> Response { try page(c, .mine) }

    func getFriendFeed(_ c: RequestContext) throws -> Response {
        let friendId = try c.params.requiredId("friendId")
        return try page(c, .of(author: friendId), destExists: friendId)
    }

    func getFeedAlbum(_ c: RequestContext) throws -> Response {
        let destId = try c.params.requiredId("destId")
        let (exists, urls) = try albumRows(c, of: destId)
        guard exists else { return .outcome(-1, "no such user") }
        return .ok(.array(urls.map(JSON.string)))
    }

    /// getUserById's album: the same as getFeedAlbum's.
    public func album(_ c: RequestContext, of userId: Int64) throws -> [String] {
        try albumRows(c, of: userId).urls
    }

    func albumRows(_ c: RequestContext, of userId: Int64) throws -> (exists: Bool, urls: [String]) {
        let result = try c.db.query(MomentsStore.album(who: c.who, author: userId, imagePrefix: imagePrefix))
        try c.adoptSession(from: result.first)
        guard let first = result.first else { throw HTTPError.unauthorized }
        let urls: [String] = try result.rows.compactMap { try $0.decode("url", as: String?.self) }
        return (try first.decode("dest_exists"), urls)
    }
}
