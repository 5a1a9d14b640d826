//! Knowledge's records (collections, artifacts, versions, blobs, chunks) on whichever backend
//! the environment selects.

#![allow(clippy::unwrap_used)]

use kai_core::{Role, UserId};
use kai_store::testing::TestDatabase;
use kai_store::{
    ArtifactFilter, ArtifactUpdate, IndexState, ItemFilter, ItemKind, LinkTarget, NewArtifact,
    NewChunk, NewNote, NewUser, NewVersion, NoteUpdate, Store, StoreError,
};
use time::Duration;

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(&NewUser {
            username: name.parse().unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn version(hash: &str, mime: &str) -> NewVersion {
    NewVersion {
        blob_hash: hash.into(),
        size: 5,
        mime: mime.into(),
        file_name: Some("a.md".into()),
        created_by: "user:test".into(),
        index_state: IndexState::Pending,
    }
}

fn artifact(owner: UserId, title: &str, hash: &str) -> NewArtifact {
    NewArtifact {
        owner_id: owner,
        collection_id: None,
        title: title.into(),
        source: None,
        metadata: "{}".into(),
        tags: vec!["b".into(), "a".into()],
        version: version(hash, "text/markdown"),
    }
}

fn chunks(texts: &[&str]) -> Vec<NewChunk> {
    texts
        .iter()
        .enumerate()
        .map(|(seq, text)| NewChunk {
            seq: seq as u64,
            heading: None,
            text: (*text).into(),
            start: 0,
            end: text.len() as u64,
        })
        .collect()
}

#[tokio::test]
async fn artifacts_are_their_owners_alone() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store.record_blob("h1", 5).await.unwrap();
    let made = store
        .create_artifact(&artifact(alice, "Notes", "h1"))
        .await
        .unwrap();
    assert_eq!(made.tags, ["a", "b"]);
    assert_eq!(made.current.version, 1);

    assert!(store.artifact(bob, made.id).await.unwrap().is_none());
    assert!(
        store
            .artifact_versions(bob, made.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .artifact_version(bob, made.id, 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete_artifact(bob, made.id).await.unwrap().is_none());
    assert!(
        store
            .add_artifact_version(bob, made.id, &version("h1", "text/plain"))
            .await
            .unwrap()
            .is_none()
    );
    let listed = store
        .artifacts(
            bob,
            &ArtifactFilter {
                limit: 10,
                ..ArtifactFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.is_empty());

    // Bob cannot file his artifact into Alice's collection.
    let hers = store.create_collection(alice, "papers", "").await.unwrap();
    let mut his = artifact(bob, "His", "h1");
    his.collection_id = Some(hers.id);
    assert!(matches!(
        store.create_artifact(&his).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_collection(alice, "papers", "again").await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn versions_accumulate_and_every_one_stays_readable() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    store.record_blob("h1", 5).await.unwrap();
    store.record_blob("h2", 5).await.unwrap();
    let made = store
        .create_artifact(&artifact(alice, "Doc", "h1"))
        .await
        .unwrap();
    let second = store
        .add_artifact_version(alice, made.id, &version("h2", "text/plain"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.current.version, 2);
    assert_eq!(second.current.blob_hash, "h2");
    let versions = store.artifact_versions(alice, made.id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        store
            .artifact_version(alice, made.id, 1)
            .await
            .unwrap()
            .unwrap()
            .blob_hash,
        "h1"
    );

    let updated = store
        .update_artifact(
            alice,
            made.id,
            &ArtifactUpdate {
                title: Some("Renamed".into()),
                tags: Some(vec!["x".into()]),
                ..ArtifactUpdate::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.title, "Renamed");
    assert_eq!(updated.tags, ["x"]);
    assert_eq!(updated.current.version, 2);
}

#[tokio::test]
async fn search_answers_only_with_the_searchable_version_of_what_still_exists() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store.record_blob("h1", 5).await.unwrap();
    let made = store
        .create_artifact(&artifact(alice, "Doc", "h1"))
        .await
        .unwrap();

    assert_eq!(
        store
            .insert_chunks(
                alice,
                ItemKind::Artifact,
                &made.id.to_string(),
                1,
                &chunks(&["one", "two"])
            )
            .await
            .unwrap(),
        2
    );
    // A retried job writes nothing twice.
    assert_eq!(
        store
            .insert_chunks(
                alice,
                ItemKind::Artifact,
                &made.id.to_string(),
                1,
                &chunks(&["one", "two"])
            )
            .await
            .unwrap(),
        2
    );
    let stored = store
        .chunks_of(&made.id.to_string(), 1, "minilm")
        .await
        .unwrap();
    let ids: Vec<i64> = stored.iter().map(|c| c.id).collect();
    assert!(stored.iter().all(|c| c.embedding.is_none()));
    // Not searchable until made so.
    assert!(store.chunk_hits(alice, &ids).await.unwrap().is_empty());

    store
        .set_embeddings(
            "minilm",
            &[(ids[0], vec![1.0, 0.0]), (ids[1], vec![0.0, 1.0])],
        )
        .await
        .unwrap();
    assert_eq!(store.embedded_chunk_ids("minilm").await.unwrap(), ids);
    assert_eq!(store.vector_dimensions("minilm").await.unwrap(), Some(2));
    assert_eq!(store.vector_dimensions("other").await.unwrap(), None);
    assert_eq!(
        store.chunks_by_id(&ids[1..], "minilm").await.unwrap()[0].embedding,
        Some(vec![0.0, 1.0])
    );
    // Another model's vectors are kept beside them.
    store
        .set_embeddings("other", &[(ids[0], vec![0.5, 0.5, 0.5])])
        .await
        .unwrap();
    assert_eq!(
        store.vector_coverage().await.unwrap(),
        (2, vec![("minilm".to_owned(), 2), ("other".to_owned(), 1)])
    );
    let with_other = store
        .chunks_of(&made.id.to_string(), 1, "other")
        .await
        .unwrap();
    assert_eq!(with_other[0].embedding, Some(vec![0.5, 0.5, 0.5]));
    assert_eq!(with_other[1].embedding, None);
    store.drop_vectors("other").await.unwrap();
    assert_eq!(
        store.vector_coverage().await.unwrap(),
        (2, vec![("minilm".to_owned(), 2)])
    );
    let searchable = store
        .make_searchable(ItemKind::Artifact, &made.id.to_string(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((searchable.version, searchable.dropped), (1, vec![]));
    let hits = store.chunk_hits(alice, &ids).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].title, "Doc");
    assert!(store.chunk_hits(bob, &ids).await.unwrap().is_empty());

    // Version 2 indexed: version 1's chunks go in the same step.
    store.record_blob("h2", 5).await.unwrap();
    store
        .add_artifact_version(alice, made.id, &version("h2", "text/plain"))
        .await
        .unwrap();
    store
        .insert_chunks(
            alice,
            ItemKind::Artifact,
            &made.id.to_string(),
            2,
            &chunks(&["three"]),
        )
        .await
        .unwrap();
    // Until then, version 1 keeps answering.
    assert_eq!(store.chunk_hits(alice, &ids).await.unwrap().len(), 2);
    let mut dropped = store
        .make_searchable(ItemKind::Artifact, &made.id.to_string(), 2)
        .await
        .unwrap()
        .unwrap()
        .dropped;
    dropped.sort_unstable();
    assert_eq!(dropped, ids);
    assert!(store.chunk_hits(alice, &ids).await.unwrap().is_empty());
    // An older version finishing late does not take over.
    let late = store
        .make_searchable(ItemKind::Artifact, &made.id.to_string(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((late.version, late.dropped), (2, vec![]));
    let versions = store.artifact_versions(alice, made.id).await.unwrap();
    assert_eq!(versions[0].index_state, IndexState::Superseded);

    let three = store
        .chunks_of(&made.id.to_string(), 2, "minilm")
        .await
        .unwrap();
    assert_eq!(
        store.chunk_hits(alice, &[three[0].id]).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.delete_artifact(alice, made.id).await.unwrap(),
        Some(vec![three[0].id])
    );
    assert!(
        store
            .chunk_hits(alice, &[three[0].id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .chunks_by_id(&[three[0].id], "minilm")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn filters_keep_to_collections_tags_and_types() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    store.record_blob("h1", 5).await.unwrap();
    let papers = store.create_collection(alice, "papers", "").await.unwrap();
    let mut in_papers = artifact(alice, "In papers", "h1");
    in_papers.collection_id = Some(papers.id);
    in_papers.tags = vec!["ml".into()];
    let a = store.create_artifact(&in_papers).await.unwrap();
    let mut pdf = artifact(alice, "PDF", "h1");
    pdf.version.mime = "application/pdf".into();
    let b = store.create_artifact(&pdf).await.unwrap();

    let only = |ids: Vec<String>| ids;
    assert_eq!(
        only(
            store
                .filtered_items(
                    alice,
                    &ItemFilter {
                        collections: vec![papers.id],
                        ..ItemFilter::default()
                    }
                )
                .await
                .unwrap()
        ),
        [a.id.to_string()]
    );
    assert_eq!(
        store
            .filtered_items(
                alice,
                &ItemFilter {
                    tags: vec!["ml".into()],
                    ..ItemFilter::default()
                }
            )
            .await
            .unwrap(),
        [a.id.to_string()]
    );
    assert_eq!(
        store
            .filtered_items(
                alice,
                &ItemFilter {
                    mime_prefix: Some("application/".into()),
                    ..ItemFilter::default()
                }
            )
            .await
            .unwrap(),
        [b.id.to_string()]
    );
    assert!(
        store
            .filtered_items(
                alice,
                &ItemFilter {
                    kind: Some("note".into()),
                    ..ItemFilter::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    // A collection deleted leaves its artifacts, in none.
    assert!(store.delete_collection(alice, papers.id).await.unwrap());
    assert_eq!(
        store
            .artifact(alice, a.id)
            .await
            .unwrap()
            .unwrap()
            .collection_id,
        None
    );
}

#[tokio::test]
async fn blobs_are_collected_only_after_a_grace_period_unreferenced() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    store.record_blob("kept", 5).await.unwrap();
    store.record_blob("loose", 5).await.unwrap();
    store
        .create_artifact(&artifact(alice, "Doc", "kept"))
        .await
        .unwrap();

    // First pass: marked, not yet due.
    assert!(
        store
            .orphaned_blobs(Duration::hours(1))
            .await
            .unwrap()
            .is_empty()
    );
    // With no grace, the loose one is due, the referenced one never.
    assert_eq!(
        store.orphaned_blobs(Duration::ZERO).await.unwrap(),
        ["loose"]
    );
    // Uploaded again meanwhile: not collected.
    store.record_blob("loose", 5).await.unwrap();
    assert!(!store.forget_blob("loose").await.unwrap());
    store.orphaned_blobs(Duration::ZERO).await.unwrap();
    assert_eq!(
        store.orphaned_blobs(Duration::ZERO).await.unwrap(),
        ["loose"]
    );
    assert!(store.forget_blob("loose").await.unwrap());
    assert!(
        store
            .orphaned_blobs(Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

fn new_note(owner: UserId, title: &str, body: &str, links: Vec<LinkTarget>) -> NewNote {
    NewNote {
        owner_id: owner,
        collection_id: None,
        title: title.into(),
        body: body.into(),
        tags: vec!["t".into()],
        created_by: "user:test".into(),
        links,
    }
}

#[tokio::test]
async fn note_links_resolve_by_title_and_stay_right_through_renames() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    // A link to a note that does not exist yet waits for it.
    let index = store
        .create_note(&new_note(
            alice,
            "Index",
            "see [[Garden Plan]]",
            vec![LinkTarget::NoteTitle("Garden Plan".into())],
        ))
        .await
        .unwrap();
    let links = store.note_links(alice, index.id).await.unwrap();
    assert_eq!(links[0].target_id, None);
    let plan = store
        .create_note(&new_note(alice, "garden plan", "tomatoes", vec![]))
        .await
        .unwrap();
    let links = store.note_links(alice, index.id).await.unwrap();
    assert_eq!(links[0].target_id, Some(plan.id.to_string()));
    assert_eq!(
        store.backlinks(alice, &plan.id.to_string()).await.unwrap(),
        [(index.id, "Index".to_owned())]
    );
    // Titles are unique without regard to case; other owners have their own.
    assert!(matches!(
        store
            .create_note(&new_note(alice, "GARDEN PLAN", "", vec![]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_note(&new_note(bob, "Garden plan", "", vec![]))
        .await
        .unwrap();
    assert!(
        store
            .backlinks(bob, &plan.id.to_string())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.note(bob, plan.id).await.unwrap().is_none());

    // Renamed: the backlink stays; a new body is a new version, a new tag list is not.
    let renamed = store
        .update_note(
            alice,
            plan.id,
            &NoteUpdate {
                title: Some("Vegetable plan".into()),
                created_by: "user:test".into(),
                ..NoteUpdate::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.version, 2);
    assert_eq!(
        store
            .backlinks(alice, &plan.id.to_string())
            .await
            .unwrap()
            .len(),
        1
    );
    let retagged = store
        .update_note(
            alice,
            plan.id,
            &NoteUpdate {
                tags: Some(vec!["veg".into()]),
                created_by: "user:test".into(),
                ..NoteUpdate::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retagged.version, retagged.tags.clone()),
        (2, vec!["veg".to_owned()])
    );
    let versions = store.note_versions(alice, plan.id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].title, "garden plan");
    assert_eq!(
        store
            .note_by_title(alice, "VEGETABLE PLAN")
            .await
            .unwrap()
            .unwrap()
            .id,
        plan.id
    );

    // Deleted: the link waits again, by its title.
    assert!(store.delete_note(alice, plan.id).await.unwrap().is_some());
    let links = store.note_links(alice, index.id).await.unwrap();
    assert_eq!(links[0].target_id, None);
    assert_eq!(links[0].title.as_deref(), Some("Garden Plan"));
}

#[tokio::test]
async fn notes_are_indexed_and_searched_like_artifacts() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let note = store
        .create_note(&new_note(alice, "Plan", "body", vec![]))
        .await
        .unwrap();
    let item = note.id.to_string();
    store
        .insert_chunks(alice, ItemKind::Note, &item, 1, &chunks(&["body"]))
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .chunks_of(&item, 1, "minilm")
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert!(store.chunk_hits(alice, &ids).await.unwrap().is_empty());
    store
        .make_searchable(ItemKind::Note, &item, 1)
        .await
        .unwrap()
        .unwrap();
    store
        .set_index_state(ItemKind::Note, &item, 1, IndexState::Indexed, None, 1)
        .await
        .unwrap();
    let hits = store.chunk_hits(alice, &ids).await.unwrap();
    assert_eq!(
        (hits[0].item_kind.as_str(), hits[0].mime.as_str()),
        ("note", "text/markdown")
    );
    assert_eq!(
        store
            .filtered_items(
                alice,
                &ItemFilter {
                    kind: Some("note".into()),
                    ..ItemFilter::default()
                }
            )
            .await
            .unwrap(),
        [item]
    );
    assert_eq!(
        store.index_states(alice).await.unwrap(),
        [(IndexState::Indexed, 1)]
    );
    assert_eq!(
        store
            .note(alice, note.id)
            .await
            .unwrap()
            .unwrap()
            .index_state,
        IndexState::Indexed
    );
}

#[tokio::test]
async fn notes_go_into_their_owners_collections_only() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let shelf = store.create_collection(alice, "shelf", "").await.unwrap();
    let mut filed = new_note(alice, "Filed", "", vec![]);
    filed.collection_id = Some(shelf.id);
    let made = store.create_note(&filed).await.unwrap();
    assert_eq!(made.collection_id, Some(shelf.id));
    let mut his = new_note(bob, "His", "", vec![]);
    his.collection_id = Some(shelf.id);
    assert!(matches!(
        store.create_note(&his).await,
        Err(StoreError::Conflict(_))
    ));
    // A collection that does not exist at all is the same answer, not a database error.
    let mut nowhere = new_note(alice, "Nowhere", "", vec![]);
    nowhere.collection_id = Some(kai_core::CollectionId::new());
    assert!(matches!(
        store.create_note(&nowhere).await,
        Err(StoreError::Conflict(_))
    ));
    let moved = store
        .update_note(
            alice,
            made.id,
            &NoteUpdate {
                collection_id: Some(Some(kai_core::CollectionId::new())),
                created_by: "user:test".into(),
                ..NoteUpdate::default()
            },
        )
        .await;
    assert!(matches!(moved, Err(StoreError::Conflict(_))), "{moved:?}");
    store.record_blob("h1", 5).await.unwrap();
    let mut lost = artifact(alice, "Lost", "h1");
    lost.collection_id = Some(kai_core::CollectionId::new());
    assert!(matches!(
        store.create_artifact(&lost).await,
        Err(StoreError::Conflict(_))
    ));
    let kept = store
        .create_artifact(&artifact(alice, "Kept", "h1"))
        .await
        .unwrap();
    let moved = store
        .update_artifact(
            alice,
            kept.id,
            &ArtifactUpdate {
                collection_id: Some(Some(kai_core::CollectionId::new())),
                ..ArtifactUpdate::default()
            },
        )
        .await;
    assert!(matches!(moved, Err(StoreError::Conflict(_))), "{moved:?}");
    // Nothing half-made was left behind.
    assert!(
        store
            .note_by_title(alice, "Nowhere")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .artifacts(
                alice,
                &ArtifactFilter {
                    limit: 10,
                    ..ArtifactFilter::default()
                }
            )
            .await
            .unwrap()
            .len(),
        1
    );
}

/// An indexed artifact of `texts` whose chunks `model` embedded as `vectors`.
async fn indexed(
    store: &Store,
    owner: UserId,
    hash: &str,
    texts: &[&str],
    model: &str,
    vectors: &[Vec<f32>],
) -> (String, Vec<i64>) {
    store.record_blob(hash, 5).await.unwrap();
    let made = store
        .create_artifact(&artifact(owner, hash, hash))
        .await
        .unwrap();
    let item = made.id.to_string();
    store
        .insert_chunks(owner, ItemKind::Artifact, &item, 1, &chunks(texts))
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .chunks_of(&item, 1, model)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let pairs: Vec<(i64, Vec<f32>)> = ids.iter().copied().zip(vectors.iter().cloned()).collect();
    store.set_embeddings(model, &pairs).await.unwrap();
    store
        .make_searchable(ItemKind::Artifact, &item, 1)
        .await
        .unwrap();
    store
        .set_index_state(
            ItemKind::Artifact,
            &item,
            1,
            IndexState::Indexed,
            None,
            ids.len() as u64,
        )
        .await
        .unwrap();
    (item, ids)
}

#[tokio::test]
async fn a_new_embedding_model_queues_again_what_it_has_not_embedded() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let (item, ids) = indexed(&store, alice, "h1", &["one"], "old", &[vec![1.0, 0.0]]).await;
    assert!(
        store
            .versions_to_index("index", "old")
            .await
            .unwrap()
            .is_empty()
    );
    let queued = store.versions_to_index("index", "new").await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!((queued[0].2.as_str(), queued[0].3), (item.as_str(), 1));
    store
        .set_embeddings("new", &[(ids[0], vec![0.0, 1.0, 0.0])])
        .await
        .unwrap();
    assert!(
        store
            .versions_to_index("index", "new")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn search_inside_the_database_needs_postgresql_with_pgvector() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let (first, first_ids) = indexed(
        &store,
        alice,
        "h1",
        &["the quick brown fox jumps", "lazy dogs sleep all day"],
        "m",
        &[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]],
    )
    .await;
    let (_, second_ids) = indexed(
        &store,
        alice,
        "h2",
        &["foxes are quick"],
        "m",
        &[vec![0.9, 0.1, 0.0]],
    )
    .await;
    indexed(
        &store,
        bob,
        "h3",
        &["a fox of bob's"],
        "m",
        &[vec![1.0, 0.0, 0.0]],
    )
    .await;

    if store.backend() == kai_config::DatabaseKind::Sqlite {
        let err = store.create_vector_index("m", 3).await.unwrap_err();
        assert!(matches!(err, StoreError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("needs PostgreSQL"), "{err}");
        assert!(store.keyword_search(alice, "fox", None, 10).await.is_err());
        assert!(!store.has_vector_index("m").await.unwrap());
        return;
    }

    // Full-text search is built in: any word, stemmed, the owner's alone.
    let hits = store
        .keyword_search(alice, "Fox jumping?", None, 10)
        .await
        .unwrap();
    let ids: Vec<i64> = hits.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [first_ids[0], second_ids[0]], "{hits:?}");
    assert!(hits[0].1 > hits[1].1);
    let only = [first.clone()];
    let narrowed = store
        .keyword_search(alice, "fox", Some(&only), 10)
        .await
        .unwrap();
    assert_eq!(narrowed.len(), 1);
    assert!(
        store
            .keyword_search(alice, "?!* &|", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .keyword_search(alice, "the and of", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    if let Err(err) = store.create_vector_index("m", 3).await {
        // A server without pgvector says what to do. scripts/test's own server has it.
        assert!(
            std::env::var_os("KAI_TEST_PGVECTOR").is_none(),
            "KAI_TEST_PGVECTOR is set, but: {err}"
        );
        assert!(err.to_string().contains("pgvector"), "{err}");
        return;
    }
    // Vectors stored before the index existed are copied in; later ones go in as stored.
    assert_eq!(store.fill_vector_index("m").await.unwrap(), 4);
    assert_eq!(store.fill_vector_index("m").await.unwrap(), 0);
    let near = store
        .vector_search(alice, "m", &[1.0, 0.05, 0.0], None, 10)
        .await
        .unwrap();
    let ids: Vec<i64> = near.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [first_ids[0], second_ids[0], first_ids[1]], "{near:?}");
    assert!(near[0].1 > 0.99);
    let narrowed = store
        .vector_search(alice, "m", &[1.0, 0.0, 0.0], Some(&only), 10)
        .await
        .unwrap();
    assert_eq!(
        narrowed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        first_ids
    );
    // The wrong number of dimensions is refused, not answered with nonsense.
    assert!(
        store
            .create_vector_index("m", 4)
            .await
            .unwrap_err()
            .to_string()
            .contains("3")
    );
    assert!(
        store
            .vector_search(alice, "m", &[1.0], None, 10)
            .await
            .is_err()
    );
    // A deleted artifact leaves the index with its chunks.
    store
        .delete_artifact(alice, first.parse().unwrap())
        .await
        .unwrap();
    let left = store
        .vector_search(alice, "m", &[1.0, 0.0, 0.0], None, 10)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        second_ids
    );
    // Dropping a model's vectors drops its index.
    store.drop_vectors("m").await.unwrap();
    assert!(!store.has_vector_index("m").await.unwrap());
    assert!(
        store
            .vector_search(alice, "m", &[1.0, 0.0, 0.0], None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
