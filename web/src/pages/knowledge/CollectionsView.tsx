import { useState } from "react";
import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";
import { Link, useParams } from "react-router";

import { QueryState } from "@/components/page/QueryState";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ArtifactList } from "./ArtifactList";
import { ConfirmDelete } from "./ConfirmDelete";
import { IndexStatus } from "./IndexStatus";
import { useCollections, useCreateCollection, useDeleteCollection } from "./queries";
import { UploadZone } from "./UploadZone";

interface NewCollection {
  name: string;
  description: string;
}

function CreateCollectionForm({ onDone }: { onDone: () => void }) {
  const { t } = useTranslation("knowledge");
  const create = useCreateCollection();
  const {
    register,
    handleSubmit,
    reset,
    formState: { errors },
  } = useForm<NewCollection>({ defaultValues: { name: "", description: "" } });
  const submit = handleSubmit((values) =>
    create.mutate(
      { name: values.name.trim(), description: values.description.trim() },
      {
        onSuccess: () => {
          reset();
          onDone();
        },
      },
    ),
  );
  return (
    <form
      onSubmit={(event) => void submit(event)}
      aria-label={t("collections.new")}
      className="flex flex-col gap-3 rounded-lg border p-3"
    >
      <div className="grid gap-3 sm:grid-cols-2">
        <div className="flex flex-col gap-1.5">
          <Label htmlFor="collection-name">{t("collections.name")}</Label>
          <Input
            id="collection-name"
            autoFocus
            aria-invalid={errors.name ? true : undefined}
            aria-describedby={errors.name ? "collection-name-error" : undefined}
            {...register("name", {
              validate: (name) => {
                const length = name.trim().length;
                return (length >= 1 && length <= 100) || t("collections.nameInvalid");
              },
            })}
          />
          {errors.name && (
            <p id="collection-name-error" className="text-destructive text-sm">
              {errors.name.message}
            </p>
          )}
        </div>
        <div className="flex flex-col gap-1.5">
          <Label htmlFor="collection-description">{t("collections.description")}</Label>
          <Input id="collection-description" {...register("description")} />
        </div>
      </div>
      {create.error && (
        <p role="alert" className="text-destructive text-sm">
          {create.error.message}
        </p>
      )}
      <div className="flex gap-2">
        <Button type="submit" disabled={create.isPending}>
          {t("collections.create")}
        </Button>
        <Button type="button" variant="ghost" onClick={onDone}>
          {t("collections.cancel")}
        </Button>
      </div>
    </form>
  );
}

export function CollectionsView() {
  const { t } = useTranslation("knowledge");
  const collections = useCollections();
  const remove = useDeleteCollection();
  const [creating, setCreating] = useState(false);
  return (
    <div className="flex flex-col gap-6">
      <IndexStatus />
      <section aria-labelledby="collections-heading" className="flex flex-col gap-3">
        <h2 id="collections-heading" className="text-lg font-medium">
          {t("collections.heading")}
        </h2>
        <QueryState
          isPending={collections.isPending}
          error={collections.error ?? remove.error}
          isEmpty={collections.data?.length === 0}
          empty={t("collections.empty")}
        >
          <ul className="flex flex-col gap-1">
            {collections.data?.map((collection) => (
              <li key={collection.id} className="flex items-center gap-2 rounded-md border px-3 py-2">
                <div className="flex min-w-0 flex-1 flex-col">
                  <Link
                    to={`/knowledge/collections/${collection.id}`}
                    className="truncate font-medium underline-offset-2 hover:underline"
                  >
                    {collection.name}
                  </Link>
                  {collection.description && (
                    <span className="text-muted-foreground text-sm">{collection.description}</span>
                  )}
                </div>
                <ConfirmDelete
                  label={t("collections.delete", { name: collection.name })}
                  pending={remove.isPending}
                  onConfirm={() => remove.mutate(collection.id)}
                />
              </li>
            ))}
          </ul>
        </QueryState>
        <p className="text-muted-foreground text-xs">{t("collections.deleteNote")}</p>
        {creating ? (
          <CreateCollectionForm onDone={() => setCreating(false)} />
        ) : (
          <div>
            <Button
              type="button"
              variant="outline"
              onClick={() => setCreating(true)}
            >
              {t("collections.new")}
            </Button>
          </div>
        )}
      </section>
    </div>
  );
}

export function CollectionDetail() {
  const { t } = useTranslation("knowledge");
  const { collectionId = "" } = useParams();
  const collections = useCollections();
  const collection = collections.data?.find((item) => item.id === collectionId);
  return (
    <section aria-labelledby="collection-heading" className="flex flex-col gap-4">
      <Link to="/knowledge" className="text-muted-foreground text-sm underline-offset-2 hover:underline">
        {t("collections.back")}
      </Link>
      <h2 id="collection-heading" className="text-lg font-medium">
        {collection?.name ?? t("collections.heading")}
      </h2>
      {collection?.description && <p className="text-muted-foreground">{collection.description}</p>}
      {collections.data && !collection ? (
        <p role="alert" className="text-destructive text-sm">
          {t("collections.missing")}
        </p>
      ) : (
        <>
          <UploadZone collection={collectionId} />
          <h3 className="font-medium">{t("artifacts.heading")}</h3>
          <ArtifactList collection={collectionId} />
        </>
      )}
    </section>
  );
}

export function ArtifactsView() {
  const { t } = useTranslation("knowledge");
  return (
    <section aria-labelledby="artifacts-heading" className="flex flex-col gap-4">
      <h2 id="artifacts-heading" className="text-lg font-medium">
        {t("artifacts.heading")}
      </h2>
      <UploadZone collection={null} />
      <ArtifactList collection={null} />
    </section>
  );
}
