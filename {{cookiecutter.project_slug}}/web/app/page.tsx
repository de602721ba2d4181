// Yours (sage-obs scaffold): change it freely; `make update` merges any template change into your edits.
import { Chat } from "../components/chat";

export default function Home() {
  return <Chat />;
}
