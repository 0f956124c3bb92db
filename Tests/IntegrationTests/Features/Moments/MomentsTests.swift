import Foundation
import XCTest

/// API.md §6 through nginx: posting, the timeline, a user's posts and album, comments and praises,
/// and who sees what (friends, strangers, blocks either way, friendships that end).
final class MomentsTests: StackTestCase {
    typealias Account = StackClient.Account

    // MARK: posting

    func testAPostShowsInTheAuthorsOwnListWithItsProfileAndImages() {
        let author = client.newAccount(name: "Poster")
        let images = [client.uploadedImage(author, width: 3, height: 2), client.uploadedImage(author, width: 2, height: 3)]
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let feedId = client.addFeed(author, text: "今天天气很好 ☀️", images: images)
        XCTAssertGreaterThan(feedId, 0)

        let mine = client.feedPage(author, "/feed/getMyFeed")
        XCTAssertEqual(mine.ids, [feedId])
        guard let item = mine.item(feedId) else { return XCTFail("the post is not in getMyFeed") }
        XCTAssertEqual(item.userId, author.userId)
        XCTAssertEqual(item.user.userId, author.userId)
        XCTAssertEqual(item.user.mobile, author.mobile, "one's own mobile in full")
        XCTAssertEqual(item.user.name, "Poster")
        XCTAssertEqual(item.text, "今天天气很好 ☀️")
        XCTAssertEqual(item.images.map(uploadPath), images.map(uploadPath), "the images in the order posted")
        XCTAssertTrue(abs(item.createTime - before) < 60_000, "createTime \(item.createTime) is ms near \(before)")
        XCTAssertEqual(item.comments, [])
        XCTAssertEqual(item.praises, [])
        XCTAssertEqual(mine.nextBeforeId, 0, "a page that is not full has no next page")
        for url in item.images {
            XCTAssertEqual(client.fetch(url).status, 200, "the image is served: \(url)")
        }
        // Images alone are a post too.
        let imageOnly = client.addFeed(author, text: "", images: [images[0]])
        XCTAssertEqual(client.feedPage(author, "/feed/getMyFeed").ids, [imageOnly, feedId], "newest first")
    }

    func testBadPostsAreRefusedAndStoreNothing() {
        let author = client.newAccount(name: "BadPoster")
        let image = client.uploadedImage(author)
        let text = client.doUploads(token: author.token, fileExt: "txt", body: Data("plain words".utf8))
        assertOK(text, "a text upload")
        let textURL = text.dataObject["url"] as? String ?? ""
        let refused: [(String, [String: String])] = [
            ("nothing at all", [:]),
            ("blank text", ["text": "  \n "]),
            ("2,001 characters", ["text": String(repeating: "字", count: 2001)]),
            ("ten images", ["images": Array(repeating: image, count: 10).joined(separator: ",")]),
            ("a foreign URL", ["text": "x", "images": "https://elsewhere.example.com/uploads/2026/01/abcdefghijklmnopqrstuvwx.png"]),
            ("a path this server never makes", ["text": "x", "images": "/uploads/../../etc/passwd"]),
            ("a name that is not stored", ["text": "x", "images": "/uploads/2026/01/abcdefghijklmnopqrstuvwx.png"]),
            ("an upload that is not an image", ["text": "x", "images": textURL]),
        ]
        for (what, params) in refused {
            let reply = client.call(author, "/feed/addFeed", params)
            XCTAssertEqual(reply.status, 400, "\(what): \(reply.text.prefix(200))")
            assertIsEnvelope(reply, what)
        }
        XCTAssertEqual(client.feedPage(author, "/feed/getMyFeed").ids, [], "nothing was stored")
        // Exactly 9 images and 2,000 characters are fine.
        client.addFeed(author, text: String(repeating: "字", count: 2000), images: Array(repeating: image, count: 9))
    }

    func testBadReferencesAndParametersOfEveryRoute() {
        let user = client.newAccount(name: "Prober")
        for path in ["/feed/addFeedComment", "/feed/addFeedPraise", "/feed/cancelPraise", "/feed/delFeed"] {
            for bad in ["abc", "-1", "0", "1.5", "99999999999999999999"] {
                let reply = client.call(user, path, ["feedId": bad, "text": "hi"])
                XCTAssertEqual(reply.status, 400, "\(path) feedId=\(bad): \(reply.text.prefix(200))")
            }
            let unknown = client.call(user, path, ["feedId": "987654321012", "text": "hi"])
            assertReply(unknown, status: 200, code: -1, "\(path) on an unknown post")
        }
        assertReply(client.call(user, "/feed/delFeedComment", ["commentId": "987654321012"]), status: 200, code: -1)
        XCTAssertEqual(client.call(user, "/feed/delFeedComment", ["commentId": "x"]).status, 400)
        XCTAssertEqual(client.call(user, "/feed/getFriendFeed", ["friendId": "x"]).status, 400)
        assertReply(client.call(user, "/feed/getFriendFeed", ["friendId": "987654321012"]), status: 200, code: -1)
        assertReply(client.call(user, "/feed/getFeedAlbum", ["destId": "987654321012"]), status: 200, code: -1)
        for pageNo in ["0", "-3", "abc", "501"] {
            XCTAssertEqual(client.call(user, "/feed/getFeed", ["pageNo": pageNo]).status, 400, "pageNo \(pageNo)")
        }
        XCTAssertEqual(client.call(user, "/feed/getFeed", ["beforeId": "nope"]).status, 400)
        let post = client.addFeed(user, text: "mine")
        XCTAssertEqual(client.call(user, "/feed/addFeedComment", ["feedId": String(post), "text": String(repeating: "a", count: 501)]).status, 400)
        XCTAssertEqual(client.call(user, "/feed/addFeedComment", ["feedId": String(post), "text": " "]).status, 400)
        XCTAssertEqual(client.call(user, "/feed/addFeedComment", ["feedId": String(post)]).status, 400)
        XCTAssertEqual(client.get("/feed/getFeed").status, 401, "no token")
    }

    // MARK: the timeline

    func testTheTimelineHoldsOwnAndFriendsPostsOnly() {
        let users = client.newAccounts(3, name: "Line")
        let (a, b, c) = (users[0], users[1], users[2])
        client.befriend(a, b)
        client.befriend(b, c)
        let fromA = client.addFeed(a, text: "A speaks")
        let fromB = client.addFeed(b, text: "B speaks")
        let fromC = client.addFeed(c, text: "C speaks")

        XCTAssertEqual(client.timeline(a).ids, [fromB, fromA], "A: own and friend B's, newest first")
        XCTAssertEqual(client.timeline(b).ids, [fromC, fromB, fromA], "B: everyone's (friends with both)")
        XCTAssertEqual(client.timeline(c).ids, [fromC, fromB], "C: not A's, a stranger")
        let seenByB = client.timeline(b).item(fromA)
        XCTAssertEqual(seenByB?.user.mobile, a.mobile, "a friend's mobile in full")
    }

    func testPagesDoNotRepeatOrSkipWhenPostsArriveBetweenThem() {
        let users = client.newAccounts(2, name: "Pager")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        var posted: [Int64] = []
        for index in 0..<25 { posted.append(client.addFeed(index % 2 == 0 ? a : b, text: "post \(index)")) }
        let newestFirst = Array(posted.reversed())

        let first = client.timeline(b)
        XCTAssertEqual(first.ids, Array(newestFirst[0..<10]))
        XCTAssertEqual(first.nextBeforeId, newestFirst[9], "the cursor is the page's last post")
        // New posts arrive between the pages.
        let newer = [client.addFeed(a, text: "late 1"), client.addFeed(b, text: "late 2")]
        let second = client.feedPage(b, "/feed/getFeed", ["beforeId": String(first.nextBeforeId)])
        XCTAssertEqual(second.ids, Array(newestFirst[10..<20]), "the cursor continues where page 1 ended")
        let third = client.feedPage(b, "/feed/getFeed", ["beforeId": String(second.nextBeforeId), "pageNo": "7"])
        XCTAssertEqual(third.ids, Array(newestFirst[20..<25]), "beforeId wins over pageNo")
        XCTAssertEqual(third.nextBeforeId, 0, "the last page")
        // Page numbers count from the newest post at the time they are asked.
        XCTAssertEqual(client.timeline(b, pageNo: 1).ids, Array((newer.reversed() + newestFirst)[0..<10]))
        XCTAssertEqual(client.timeline(b, pageNo: 3).ids, Array((newer.reversed() + newestFirst)[20..<27]))
        XCTAssertEqual(client.timeline(b, pageNo: 4).ids, [])
    }

    // MARK: strangers, blocks and ended friendships

    func testAStrangerSeesTheTenNewestPostsAndAFriendSeesAll() {
        let users = client.newAccounts(3, name: "Album")
        let (author, friend, stranger) = (users[0], users[1], users[2])
        client.befriend(author, friend)
        var posts: [Int64] = []
        for index in 0..<12 { posts.append(client.addFeed(author, text: "p\(index)")) }
        let newestFirst = Array(posts.reversed())

        let strangerFirst = client.postsOf(author.userId, as: stranger)
        XCTAssertEqual(strangerFirst.ids, Array(newestFirst[0..<10]))
        XCTAssertEqual(strangerFirst.data.first?.user.mobile == author.mobile, false, "a stranger sees a masked mobile")
        XCTAssertEqual(client.postsOf(author.userId, as: stranger, pageNo: 2).ids, [], "never more than the 10 newest")
        let beyond = client.feedPage(stranger, "/feed/getFriendFeed", ["friendId": String(author.userId),
                                                                       "beforeId": String(newestFirst[9])])
        XCTAssertEqual(beyond.ids, [], "not through the cursor either")

        XCTAssertEqual(client.postsOf(author.userId, as: friend).ids, Array(newestFirst[0..<10]))
        XCTAssertEqual(client.postsOf(author.userId, as: friend, pageNo: 2).ids, Array(newestFirst[10..<12]))
        XCTAssertEqual(client.postsOf(author.userId, as: author, pageNo: 2).ids, Array(newestFirst[10..<12]))
        // A stranger may look but not comment or praise.
        let comment = client.call(stranger, "/feed/addFeedComment", ["feedId": String(newestFirst[0]), "text": "hello"])
        assertReply(comment, status: 403, code: -1, "a stranger comments")
        assertReply(client.call(stranger, "/feed/addFeedPraise", ["feedId": String(newestFirst[0])]), status: 403, code: -1)
    }

    func testABlockEitherWayHidesEverything() {
        for blockerIsAuthor in [true, false] {
            let users = client.newAccounts(3, name: blockerIsAuthor ? "BlkA" : "BlkB")
            let (author, viewer, other) = (users[0], users[1], users[2])
            client.befriend(author, viewer)
            client.befriend(author, other)
            client.befriend(viewer, other)
            let image = client.uploadedImage(author)
            let post = client.addFeed(author, text: "before the block", images: [image])
            let otherPost = client.addFeed(other, text: "by other")
            assertOK(client.call(viewer, "/feed/addFeedComment", ["feedId": String(otherPost), "text": "from viewer"]))
            XCTAssertEqual(client.timeline(viewer).ids, [otherPost, post])

            let (blocker, blocked) = blockerIsAuthor ? (author, viewer) : (viewer, author)
            assertOK(client.call(blocker, "/chat/setBlock", ["blockId": String(blocked.userId)]))
            let context = blockerIsAuthor ? "the author blocks the viewer" : "the viewer blocks the author"
            XCTAssertEqual(client.timeline(viewer).ids, [otherPost], "timeline: \(context)")
            XCTAssertEqual(client.postsOf(author.userId, as: viewer).ids, [], "getFriendFeed: \(context)")
            XCTAssertEqual(client.album(author.userId, as: viewer), [], "album: \(context)")
            let profile = client.userById(viewer, author.userId)
            XCTAssertEqual((profile.dataObject["album"] as? [Any])?.count, 0, "getUserById's album: \(context)")
            assertReply(client.call(viewer, "/feed/addFeedComment", ["feedId": String(post), "text": "x"]), status: 200, code: -1)
            assertReply(client.call(viewer, "/feed/addFeedPraise", ["feedId": String(post)]), status: 200, code: -1)
            // The viewer's comment under a third user's post is hidden from the author too.
            let seenByAuthor = client.timeline(author).item(otherPost)
            XCTAssertEqual(seenByAuthor?.comments.map(\.userId), [], "comments across the block: \(context)")
            // Unblocking shows it all again (the friendship was never ended).
            assertOK(client.call(blocker, "/chat/removeBlack", ["destId": String(blocked.userId)]))
            XCTAssertEqual(client.timeline(viewer).ids, [otherPost, post], "after unblocking: \(context)")
        }
    }

    func testAnEndedFriendshipHidesThePostsFromThenOn() {
        let users = client.newAccounts(2, name: "Ended")
        let (a, b) = (users[0], users[1])
        client.befriend(a, b)
        var posts: [Int64] = []
        for index in 0..<11 { posts.append(client.addFeed(a, text: "while friends \(index)")) }
        XCTAssertEqual(client.timeline(b).ids.count, 10)
        assertOK(client.call(b, "/chat/delFriend", ["destId": String(a.userId)]))
        XCTAssertEqual(client.timeline(b).ids, [], "the timeline no longer shows them")
        XCTAssertEqual(client.postsOf(a.userId, as: b).ids, Array(posts.reversed()[0..<10]), "a stranger's view: the 10 newest")
        XCTAssertEqual(client.postsOf(a.userId, as: b, pageNo: 2).ids, [])
        assertReply(client.call(b, "/feed/addFeedComment", ["feedId": String(posts[10]), "text": "x"]), status: 403, code: -1)
    }

    // MARK: comments and praises

    func testCommentsAndPraisesAreShownOnlyToThoseWhoMaySeeThem() {
        let users = client.newAccounts(3, name: "Cmt")
        let (author, b, c) = (users[0], users[1], users[2])
        client.befriend(author, b)
        client.befriend(author, c)   // b and c are strangers to each other
        let post = client.addFeed(author, text: "comment on this")
        let fromB = client.call(b, "/feed/addFeedComment", ["feedId": String(post), "text": "B says hi"])
        assertOK(fromB)
        let bComment = int64(fromB.dataObject["commentId"]) ?? 0
        assertOK(client.call(c, "/feed/addFeedComment", ["feedId": String(post), "text": "C says hi"]))
        assertOK(client.call(author, "/feed/addFeedComment", ["feedId": String(post), "text": "thanks B", "replyId": String(b.userId)]))
        for user in [b, c, author] { assertOK(client.call(user, "/feed/addFeedPraise", ["feedId": String(post)])) }

        let byAuthor = client.timeline(author).item(post)
        XCTAssertEqual(byAuthor?.comments.map(\.text), ["B says hi", "C says hi", "thanks B"], "the author sees every comment, in order")
        XCTAssertEqual(Set(byAuthor?.praises.map(\.userId) ?? []), [author.userId, b.userId, c.userId])
        let reply = byAuthor?.comments.last
        XCTAssertEqual(reply?.replyId, b.userId)
        XCTAssertEqual(reply?.replyName, "Cmt1")
        XCTAssertEqual(byAuthor?.comments.first?.commentId, bComment)
        XCTAssertEqual(byAuthor?.comments.first?.name, "Cmt1")

        let byB = client.timeline(b).item(post)
        XCTAssertEqual(byB?.comments.map(\.text), ["B says hi", "thanks B"], "B: own and the author's, not stranger C's")
        XCTAssertEqual(Set(byB?.praises.map(\.userId) ?? []), [author.userId, b.userId])
        let byC = client.timeline(c).item(post)
        XCTAssertEqual(byC?.comments.map(\.text), ["C says hi", "thanks B"])
        XCTAssertEqual(Set(byC?.praises.map(\.userId) ?? []), [author.userId, c.userId])

        // replyId must be someone who took part in the post.
        let outsider = client.newAccount(name: "Outsider")
        assertReply(client.call(b, "/feed/addFeedComment", ["feedId": String(post), "text": "x", "replyId": String(outsider.userId)]),
                    status: 200, code: -1)
    }

    func testPraisingTwiceIsOnePraiseAndCancellingIsAlwaysASuccess() {
        let users = client.newAccounts(2, name: "Praise")
        let (author, friend) = (users[0], users[1])
        client.befriend(author, friend)
        let post = client.addFeed(author, text: "praise me")
        let eventsBefore = client.feedEvents(author).count
        assertOK(client.call(friend, "/feed/addFeedPraise", ["feedId": String(post)]))
        assertOK(client.call(friend, "/feed/addFeedPraise", ["feedId": String(post)]))
        XCTAssertEqual(client.timeline(author).item(post)?.praises.map(\.userId), [friend.userId])
        let praiseEvents = client.feedEvents(author).dropFirst(eventsBefore).filter { $0.type == "feed_praise" }
        XCTAssertEqual(praiseEvents.count, 1, "the author hears of the praise once")
        XCTAssertEqual(int64(praiseEvents.first?.data["fromId"]), friend.userId)
        XCTAssertEqual(int64(praiseEvents.first?.data["feedId"]), post)

        assertOK(client.call(friend, "/feed/cancelPraise", ["feedId": String(post)]))
        XCTAssertEqual(client.timeline(author).item(post)?.praises.map(\.userId), [])
        assertOK(client.call(friend, "/feed/cancelPraise", ["feedId": String(post)]), "cancelling what is not there")
    }

    func testCommentsAndRepliesAreEventsForTheAuthorAndTheOneAnswered() {
        let users = client.newAccounts(3, name: "Evt")
        let (author, b, c) = (users[0], users[1], users[2])
        client.befriend(author, b)
        client.befriend(author, c)
        client.befriend(b, c)
        let post = client.addFeed(author, text: "talk")
        assertOK(client.call(b, "/feed/addFeedComment", ["feedId": String(post), "text": "first"]))
        let authorEvents = client.feedEvents(author).filter { $0.type == "feed_comment" }
        XCTAssertEqual(authorEvents.count, 1)
        XCTAssertEqual(int64(authorEvents.first?.data["fromId"]), b.userId)
        XCTAssertEqual(authorEvents.first?.data["text"] as? String, "first")

        let bBefore = client.feedEvents(b).count
        assertOK(client.call(c, "/feed/addFeedComment", ["feedId": String(post), "text": "answering B", "replyId": String(b.userId)]))
        let toB = client.feedEvents(b).dropFirst(bBefore).filter { $0.type == "feed_comment" }
        XCTAssertEqual(toB.count, 1, "B was answered")
        XCTAssertEqual(int64(toB.first?.data["replyId"]), b.userId)
        XCTAssertEqual(client.feedEvents(author).filter { $0.type == "feed_comment" }.count, 2, "the author hears of both")
        XCTAssertEqual(client.feedEvents(c).filter { $0.type == "feed_comment" }.count, 0, "not one's own comment")
    }

    // MARK: deleting

    func testDeletingOnesOwnPostAndComments() {
        let users = client.newAccounts(3, name: "Del")
        let (author, b, c) = (users[0], users[1], users[2])
        client.befriend(author, b)
        client.befriend(author, c)
        let post = client.addFeed(author, text: "short-lived")
        let commentB = int64(client.call(b, "/feed/addFeedComment", ["feedId": String(post), "text": "by B"]).dataObject["commentId"]) ?? 0
        let commentC = int64(client.call(c, "/feed/addFeedComment", ["feedId": String(post), "text": "by C"]).dataObject["commentId"]) ?? 0

        assertReply(client.call(c, "/feed/delFeedComment", ["commentId": String(commentB)]), status: 200, code: -1,
                    "someone else's comment on someone else's post")
        assertOK(client.call(b, "/feed/delFeedComment", ["commentId": String(commentB)]), "one's own comment")
        assertOK(client.call(author, "/feed/delFeedComment", ["commentId": String(commentC)]), "a comment on one's own post")
        XCTAssertEqual(client.timeline(author).item(post)?.comments, [])

        assertReply(client.call(b, "/feed/delFeed", ["feedId": String(post)]), status: 200, code: -1, "someone else's post")
        XCTAssertEqual(client.timeline(b).ids, [post])
        assertOK(client.call(author, "/feed/delFeed", ["feedId": String(post)]))
        for user in [author, b, c] { XCTAssertEqual(client.timeline(user).ids, [], "gone for everyone") }
        assertReply(client.call(author, "/feed/delFeed", ["feedId": String(post)]), status: 200, code: -1, "twice")
        assertReply(client.call(b, "/feed/addFeedPraise", ["feedId": String(post)]), status: 200, code: -1)
    }

    // MARK: the album

    func testTheAlbumShowsTheFourNewestImagesTheViewerMaySee() {
        let users = client.newAccounts(3, name: "Pics")
        let (author, friend, stranger) = (users[0], users[1], users[2])
        client.befriend(author, friend)
        let images = (0..<6).map { client.uploadedImage(author, width: $0 + 1, height: 1) }
        client.addFeed(author, text: "old", images: [images[0]])
        client.addFeed(author, text: "two", images: [images[1], images[2]])
        client.addFeed(author, text: "no images")
        client.addFeed(author, text: "three", images: [images[3], images[4], images[5]])
        let expected = [images[3], images[4], images[5], images[1]].map(uploadPath)
        XCTAssertEqual(client.album(author.userId, as: friend).map(uploadPath), expected)
        XCTAssertEqual(client.album(author.userId, as: author).map(uploadPath), expected)
        let profile = client.userById(friend, author.userId)
        XCTAssertEqual((profile.dataObject["album"] as? [String])?.map(uploadPath), expected, "getUserById's album")

        // A stranger: only images among the 10 newest posts.
        XCTAssertEqual(client.album(author.userId, as: stranger).map(uploadPath), expected)
        for index in 0..<9 { client.addFeed(author, text: "words \(index)") }
        XCTAssertEqual(client.album(author.userId, as: stranger).map(uploadPath), [images[3], images[4], images[5]].map(uploadPath),
                       "the 'two' post is no longer among the 10 newest")
        XCTAssertEqual(client.album(author.userId, as: friend).map(uploadPath), expected, "a friend sees further back")
    }
}
