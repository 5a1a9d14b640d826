import { useParams } from "react-router";

import { ConversationList } from "./ConversationList";
import { ConversationPane } from "./ConversationPane";

export function Component() {
  const { conversationId } = useParams();
  return (
    <div className="flex h-full flex-col md:flex-row">
      <ConversationList activeId={conversationId} />
      <ConversationPane key={conversationId ?? "new"} conversationId={conversationId} />
    </div>
  );
}
