import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";

function useArtifacts() {
  return useQuery({
    queryKey: queryKeys.artifacts,
    queryFn: () => unwrap(api.GET("/api/v1/artifacts")),
    select: (page) => page.artifacts,
  });
}

function useCollectionList() {
  return useQuery({
    queryKey: queryKeys.collections,
    queryFn: () => unwrap(api.GET("/api/v1/collections")),
    select: (list) => list.collections,
  });
}

export function Component() {
  const { t } = useTranslation("knowledge");
  const collections = useCollectionList();
  const artifacts = useArtifacts();
  return (
    <PageSection title={t("title")}>
      <section className="flex flex-col gap-2">
        <h2 className="font-medium">{t("collections", { count: collections.data?.length ?? 0 })}</h2>
        <QueryState
          isPending={collections.isPending}
          error={collections.error}
          isEmpty={collections.data?.length === 0}
          empty={t("noCollections")}
        >
          <ul className="flex flex-col gap-1">
            {collections.data?.map((collection) => (
              <li key={collection.id} className="rounded-md border px-3 py-2">
                <p className="font-medium">{collection.name}</p>
                {collection.description && (
                  <p className="text-muted-foreground text-sm">{collection.description}</p>
                )}
              </li>
            ))}
          </ul>
        </QueryState>
      </section>
      <section className="flex flex-col gap-2">
        <h2 className="font-medium">{t("artifacts", { count: artifacts.data?.length ?? 0 })}</h2>
        <QueryState
          isPending={artifacts.isPending}
          error={artifacts.error}
          isEmpty={artifacts.data?.length === 0}
          empty={t("noArtifacts")}
        >
          <ul className="flex flex-col gap-1">
            {artifacts.data?.map((artifact) => (
              <li key={artifact.id} className="flex items-center gap-2 rounded-md border px-3 py-2">
                <span className="min-w-0 flex-1 truncate">{artifact.title}</span>
                <span className="text-muted-foreground text-xs">{artifact.current.mime}</span>
                <Badge variant="outline">{t(`index.${artifact.current.index_state}`)}</Badge>
              </li>
            ))}
          </ul>
        </QueryState>
      </section>
    </PageSection>
  );
}
